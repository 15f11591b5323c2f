"""A case's prompts from its source: its prompt file, its rows of a detector's box CSV, or its
labelmap (one box, or the mask, on the largest slice of each connected component)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..core.geometry import plan_slices
from ..core.volume import Volume, same_grid
from ..errors import SegmentWithSAM2Error

BOX_FIELDS = ("case_id", "object", "label", "corner1", "corner2", "space")
FROM_LABELS = ("box", "mask")
_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)  # 26-neighbours: a component is one structure in 3D


def read_box_rows(path) -> dict[str, list[dict]]:
    """case id -> its rows; corners as three numbers separated by spaces, commas or semicolons."""
    path = Path(path)
    if not path.is_file():
        raise SegmentWithSAM2Error(f"boxes file not found: {path}")
    rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
    missing = set(BOX_FIELDS) - set(rows[0] if rows else BOX_FIELDS) - {"space", "object"}
    if not rows or missing:
        raise SegmentWithSAM2Error(f"boxes file {path} needs a header with {', '.join(BOX_FIELDS)} and one row per box")
    by_case = {}
    for row in rows:
        by_case.setdefault(row["case_id"], []).append(row)
    return by_case


def prompts_from_boxes(rows: list[dict], where: str) -> dict:
    """The prompt structure of one case's box rows: one object per label, one box per row."""
    spaces = {(row.get("space") or "RAS").upper() for row in rows}
    if len(spaces) > 1:
        raise SegmentWithSAM2Error(f"{where}: the boxes of one case must share one space, got {sorted(spaces)}")
    objects = {}
    for row in rows:
        label = _whole(row.get("label"), f"{where} label")
        obj = objects.setdefault(label, {"label": label, "name": row.get("object") or f"object {label}", "boxes": []})
        obj["boxes"].append({"corner1": _triple(row["corner1"], where), "corner2": _triple(row["corner2"], where)})
    return {"space": spaces.pop(), "objects": list(objects.values())}


def _triple(text, where) -> list[float]:
    parts = [p for p in re.split(r"[\s,;]+", str(text or "").strip()) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 3:
        raise SegmentWithSAM2Error(f"{where}: a corner must be three numbers (e.g. \"10 20 5\"), got {text!r}")
    return values


def _whole(text, what) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise SegmentWithSAM2Error(f"{what} must be a whole number, got {text!r}") from None


def prompts_from_labels(labels: Volume, volume: Volume, mode: str, values=None, axis: str = "auto") -> dict:
    """One object per label value (``values``: a set of those to use; None: all), prompted on the slice
    of largest area of each of its connected components: its bounding box there, or its mask."""
    if not same_grid(labels, volume):
        raise SegmentWithSAM2Error("the labelmap is not on the image's voxel grid; resample it first")
    array = np.asarray(labels.array)
    present = [int(v) for v in np.unique(array) if v > 0]
    chosen = present if values is None else [v for v in present if v in values]
    if not chosen:
        raise SegmentWithSAM2Error(f"the labelmap holds no label to prompt from (values present: {present or 'none'})")
    plan = plan_slices(volume, axis)
    objects = [_object_of_label(array == value, value, mode, plan) for value in chosen]
    return {"space": "IJK", "objects": objects}


def _object_of_label(mask: np.ndarray, value: int, mode: str, plan) -> dict:
    components, count = ndimage.label(mask, structure=_CONNECTIVITY)
    sizes = ndimage.sum_labels(mask, components, index=np.arange(1, count + 1))
    used, obj = set(), {"label": value, "name": f"label {value}", "boxes": [], "masks": []}
    for component in np.argsort(-sizes) + 1:  # the largest first: it gets its best slice
        view = plan.view_of(components == component)
        areas = view.reshape(view.shape[0], -1).sum(axis=1)
        free = [int(s) for s in np.argsort(-areas, kind="stable") if areas[s] > 0 and int(s) not in used]
        if not free:
            continue  # every slice it touches already prompts a larger component
        used.add(free[0])
        on_slice = np.zeros_like(mask)
        plan.view_of(on_slice)[free[0]] = view[free[0]]
        if mode == "mask":
            obj["masks"].append({"mask": on_slice, "slice": free[0]})
        else:
            obj["boxes"].append(_bounding_box(on_slice, plan.slice_axis))
    return {key: item for key, item in obj.items() if item != []}


def _bounding_box(on_slice: np.ndarray, slice_axis: int) -> dict:
    """Corners (IJK) through the outermost voxel centres, as ``evaluate``'s boxes; an in-plane
    extent of one voxel is widened to the voxel's faces so the box keeps an area."""
    ijk = np.stack(np.nonzero(on_slice)[::-1], axis=1)  # (i, j, k)
    low, high = ijk.min(axis=0).astype(float), ijk.max(axis=0).astype(float)
    thin = (low == high) & (np.arange(3) != slice_axis)
    low[thin] -= 0.5
    high[thin] += 0.5
    return {"corner1": [float(v) if v % 1 else int(v) for v in low], "corner2": [float(v) if v % 1 else int(v) for v in high]}
