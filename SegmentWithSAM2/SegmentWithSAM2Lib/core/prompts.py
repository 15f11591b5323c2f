"""Prompts: points, boxes and masks for one or several objects, and their placement on frames.

The structure is the prompt file's (see the README): ``{"space": "RAS"|"LPS"|"IJK", "objects":
[{"name", "label", "color", "points": [{"position", "positive"}], "boxes": [{"corner1",
"corner2"}], "masks": [{"slice", "mask"}]}]}``; IJK positions are (i, j, k) = (column, row,
slice) and a mask is a boolean array shaped like the volume ([k, j, i]) used on one slice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import SegmentWithSAM2Error
from ..options import SPACES, look_up
from . import prompt_fields as fields
from .geometry import SlicePlan, plan_slices
from .inplane import InPlaneMap
from .volume import LPS_TO_RAS, Volume, apply_affine

PALETTE = [(0.9, 0.5, 0.1), (0.2, 0.6, 0.9), (0.3, 0.8, 0.3), (0.9, 0.3, 0.6), (0.7, 0.6, 0.2), (0.5, 0.4, 0.9)]
MAX_LABEL = 65535


@dataclass
class SliceInputs:
    """One object's prompts on one slice, in frame pixels ((x, y) = (col, row))."""

    points: list = field(default_factory=list)
    labels: list = field(default_factory=list)  # 1 positive, 0 negative
    box: tuple | None = None  # x0, y0, x1, y1
    mask: torch.Tensor | None = None  # S x S bool

    @property
    def has_positive(self) -> bool:
        return self.box is not None or self.mask is not None or any(self.labels)

    def same_as(self, other: "SliceInputs | None") -> bool:
        if other is None:
            return False
        masks_equal = (self.mask is None) == (other.mask is None) and (
            self.mask is None or torch.equal(self.mask, other.mask))
        return (self.points == other.points and self.labels == other.labels and self.box == other.box
                and masks_equal)


@dataclass
class ObjectInputs:
    name: str
    label: int
    color: tuple
    slices: dict[int, SliceInputs] = field(default_factory=dict)
    terminology: dict | None = None  # what it is, in codes (prompt_fields.terminology); None: not said

    def on(self, index: int) -> SliceInputs:
        return self.slices.setdefault(index, SliceInputs())


def place_prompts(prompts: dict, volume: Volume, plan: SlicePlan, inplane: InPlaneMap) -> list[ObjectInputs]:
    """Check the prompt structure and map every prompt onto its slice's frame."""
    if not isinstance(prompts, dict):
        raise SegmentWithSAM2Error("prompts must be an object with 'space' and 'objects'")
    fields.check_keys(prompts, fields.TOP_KEYS, "prompts")
    space = look_up(str(prompts.get("space", "RAS")).upper(), SPACES, "prompt space")
    objects = prompts.get("objects")
    if not isinstance(objects, list) or not objects:
        raise SegmentWithSAM2Error("prompts have no objects; add at least one object with a point or box")
    placer = _Placer(volume, plan, inplane, _to_ijk_matrix(volume, space))
    placed = [placer.place_object(obj, n) for n, obj in enumerate(objects)]
    labels = [o.label for o in placed]
    if len(set(labels)) != len(labels):
        raise SegmentWithSAM2Error(f"object labels must be distinct, got {labels}")
    return placed


def check_prompts(volume: Volume, prompts: dict, axis: str = "auto") -> None:
    """Every check of place_prompts, before a model is loaded (a bad prompt file should not wait
    for a model load or a download).  None of them depends on the model's frame size, so a
    nominal one stands in for it."""
    plan = plan_slices(volume, axis)
    place_prompts(prompts, volume, plan, InPlaneMap.fit(plan.slice_shape, plan.pixel_spacing, 1024))


def _to_ijk_matrix(volume: Volume, space: str) -> np.ndarray:
    if space == "IJK":
        return np.eye(4)
    ras_to_ijk = np.linalg.inv(volume.ijk_to_ras)
    return ras_to_ijk @ LPS_TO_RAS if space == "LPS" else ras_to_ijk


class _Placer:
    def __init__(self, volume, plan, inplane, to_ijk):
        self.volume, self.plan, self.inplane, self.to_ijk = volume, plan, inplane, to_ijk

    def place_object(self, obj, n) -> ObjectInputs:
        if not isinstance(obj, dict):
            raise SegmentWithSAM2Error(f"object #{n + 1} must be a JSON object")
        fields.check_keys(obj, fields.OBJECT_KEYS, f"object #{n + 1}")
        label = obj.get("label", n + 1)
        if not isinstance(label, int) or isinstance(label, bool) or not 1 <= label <= MAX_LABEL:
            raise SegmentWithSAM2Error(f"object #{n + 1}: label must be an integer 1..{MAX_LABEL}, got {label!r}")
        name = fields.name(obj.get("name", f"object {label}"), f"object #{n + 1}")
        out = ObjectInputs(name, label, fields.color(obj.get("color", PALETTE[n % len(PALETTE)]), f"object {name!r}"),
                           terminology=fields.terminology(obj["terminology"], f"object {name!r}")
                           if "terminology" in obj else None)
        for p, point in enumerate(_items(obj, "points", out.name)):
            self._add_point(out, point, f"{out.name!r} point #{p + 1}")
        for b, box in enumerate(_items(obj, "boxes", out.name)):
            self._add_box(out, box, f"{out.name!r} box #{b + 1}")
        for m, mask in enumerate(_items(obj, "masks", out.name)):
            self._add_mask(out, mask, f"{out.name!r} mask #{m + 1}")
        if not out.slices:
            raise SegmentWithSAM2Error(f"object {out.name!r} has no prompts; give a point, a box or a mask")
        if not any(s.has_positive for s in out.slices.values()):
            raise SegmentWithSAM2Error(
                f"object {out.name!r} has only negative points; add a positive point, a box or a mask")
        return out

    def _slice_coords(self, position, what) -> np.ndarray:
        """A position in the prompt space -> (slice, row, col), checked to lie in the volume."""
        try:
            pos = np.asarray(position, dtype=float).reshape(3)
        except (TypeError, ValueError) as error:
            raise SegmentWithSAM2Error(f"{what}: a position must be three numbers, got {position!r}") from error
        ijk = apply_affine(self.to_ijk, pos)[0]
        size = np.asarray(self.volume.shape_ijk)
        if np.any(ijk < -0.5) or np.any(ijk > size - 0.5) or not np.all(np.isfinite(ijk)):
            raise SegmentWithSAM2Error(
                f"{what} at {pos.tolist()} is outside the volume (voxel {np.round(ijk, 2).tolist()}, "
                f"size {size.tolist()}); check the coordinate space (RAS/LPS/IJK)")
        return self.plan.ijk_to_slice(ijk)[0]

    def _slice_index(self, coordinate: float) -> int:
        """The nearest slice; a point on the volume's outer face (coordinate -0.5 or n - 0.5) is on the edge slice."""
        return min(max(int(np.floor(coordinate + 0.5)), 0), self.plan.num_slices - 1)

    def _add_point(self, out, point, what):
        if not isinstance(point, dict) or "position" not in point:
            raise SegmentWithSAM2Error(f"{what} needs a 'position'")
        fields.check_keys(point, fields.POINT_KEYS, what)
        positive = fields.boolean(point, "positive", True, what)
        s, r, c = self._slice_coords(point["position"], what)
        fr, fc = self.inplane.slice_to_frame([r, c])[0]
        index = self._slice_index(s)
        target = out.on(index)
        if target.mask is not None:
            raise SegmentWithSAM2Error(f"{what}: slice {index} already has a mask prompt; use one or the other")
        target.points.append((fc, fr))
        target.labels.append(1 if positive else 0)

    def _add_box(self, out, box, what):
        if isinstance(box, dict) and "corners" in box:
            fields.check_keys(box, fields.BOX_KEYS, what)
            return self._add_oriented_box(out, box, what)
        if not isinstance(box, dict) or "corner1" not in box or "corner2" not in box:
            raise SegmentWithSAM2Error(f"{what} needs 'corner1' and 'corner2' (or 'corners')")
        fields.check_keys(box, fields.BOX_KEYS, what)
        a = self._slice_coords(box["corner1"], what)
        b = self._slice_coords(box["corner2"], what)
        if abs(a[0] - b[0]) > 0.5:
            raise SegmentWithSAM2Error(
                f"{what}: its corners lie on slices {a[0]:.2f} and {b[0]:.2f} along the {self.plan.view} "
                "axis; both corners must be on one slice (within half a voxel)")
        self._set_box(out, (a[0] + b[0]) / 2, np.stack([a, b]), what)

    def _add_oriented_box(self, out, box, what):
        """A 3D box (e.g. a Slicer ROI) given by its corners: its outline on the slice through its centre."""
        corners = box["corners"]
        if not isinstance(corners, list) or len(corners) < 2:
            raise SegmentWithSAM2Error(f"{what}: 'corners' must list at least two positions")
        points = np.stack([self._slice_coords(c, what) for c in corners])
        self._set_box(out, points[:, 0].mean(), points, what)

    def _set_box(self, out, slice_coordinate, points, what):
        (r0, c0), (r1, c1) = points[:, 1:].min(axis=0), points[:, 1:].max(axis=0)
        if r1 - r0 < 1e-6 or c1 - c0 < 1e-6:
            raise SegmentWithSAM2Error(f"{what} has zero area on its slice; give two opposite corners")
        (fr0, fc0), (fr1, fc1) = self.inplane.slice_to_frame([[r0, c0], [r1, c1]])
        index = self._slice_index(slice_coordinate)
        target = out.on(index)
        if target.box is not None or target.mask is not None:
            raise SegmentWithSAM2Error(f"{what}: slice {index} already has a box or mask for this object")
        target.box = (fc0, fr0, fc1, fr1)

    def _add_mask(self, out, item, what):
        if not isinstance(item, dict) or "mask" not in item or "slice" not in item:
            raise SegmentWithSAM2Error(f"{what} needs 'mask' (an array shaped like the volume) and 'slice'")
        fields.check_keys(item, fields.MASK_KEYS, what)
        mask = np.asarray(item["mask"]).astype(bool)
        if mask.shape != self.volume.array.shape:
            raise SegmentWithSAM2Error(f"{what} has shape {mask.shape}; it must match the volume {self.volume.array.shape}")
        index = fields.whole_number(item["slice"], what)
        if not 0 <= index < self.plan.num_slices:
            raise SegmentWithSAM2Error(f"{what}: slice {index} is outside 0..{self.plan.num_slices - 1}")
        on_slice = torch.from_numpy(np.ascontiguousarray(self.plan.view_of(mask)[index]))
        if not on_slice.any():
            raise SegmentWithSAM2Error(f"{what} is empty on slice {index}")
        target = out.on(index)
        if target.points or target.box is not None or target.mask is not None:
            raise SegmentWithSAM2Error(f"{what}: slice {index} already has other prompts for this object")
        target.mask = self.inplane.image_to_frame(on_slice[None].float())[0] >= 0.5


def _items(obj, key, name) -> list:
    items = obj.get(key, [])
    if not isinstance(items, list):
        raise SegmentWithSAM2Error(f"object {name!r}: '{key}' must be a list")
    return items
