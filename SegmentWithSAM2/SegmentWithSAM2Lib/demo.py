"""The demo: a synthetic CT (``synthetic.demo_ct``) segmented end to end from one box, written
as files a user can open: the volume, its prompts, the labelmap and an overlay picture."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .core.metrics import dice, middle_slice_box
from .errors import SegmentWithSAM2Error


@dataclass
class DemoResult:
    labelmap: Path
    overlay: Path
    dice: float  # against the sample's known label
    seconds: float
    slices_processed: dict


def run_demo(output_dir, model, on_progress=None) -> DemoResult:
    """Write the sample and its prompts into ``output_dir``, segment it with ``model``, score it."""
    from . import api
    from .io.atomic import write_text_atomic
    from .io.labelmaps import write_labelmap
    from .synthetic import demo_ct

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    volume, truth = demo_ct()
    prompts = in_ras(middle_slice_box(truth, 1, name="organ", color=(0.9, 0.5, 0.1)), volume)
    write_labelmap(volume.array, volume, out / "sample_ct.nrrd")
    write_text_atomic(out / "prompts.json", json.dumps(prompts, indent=2))
    result = api.segment(model, volume, prompts, window="soft-tissue", on_progress=on_progress)
    api.write_result(result, out / "sample_ct_seg.nii.gz", overwrite=True)  # the demo's own folder
    save_overlay(volume, result.labelmap, truth, out / "overlay.png")
    return DemoResult(out / "sample_ct_seg.nii.gz", out / "overlay.png", dice(result.labelmap == 1, truth),
                      result.seconds, result.slices_processed)


def in_ras(prompts: dict, volume) -> dict:
    """An IJK box prompt with its corners in RAS millimetres (to 1 µm), as a prompt file holds them."""
    objects = []
    for obj in prompts["objects"]:
        boxes = [{key: volume.ijk_to_ras_points([box[key]])[0].round(3).tolist() for key in ("corner1", "corner2")}
                 for box in obj["boxes"]]
        objects.append({**obj, "boxes": boxes})
    return {"space": "RAS", "objects": objects}


def save_overlay(volume, labelmap, truth, path, count=4) -> None:
    """A few axial slices across the object: CT in soft-tissue window, result in orange, truth outlined."""
    from PIL import Image
    from scipy import ndimage

    from .core.intensity import resolve_window

    slices = np.nonzero(truth.any(axis=(1, 2)))[0]
    if slices.size == 0:
        raise SegmentWithSAM2Error("the sample has no labelled slices")
    picks = np.linspace(slices.min(), slices.max(), count).round().astype(int)
    window = resolve_window("soft-tissue", volume.array)
    tiles = []
    for k in picks:
        gray = window.apply(volume.array[k])
        rgb = np.repeat(gray[..., None], 3, axis=2)
        mask = labelmap[k] > 0
        rgb[mask] = 0.5 * rgb[mask] + 0.5 * np.array([255.0, 140.0, 0.0])
        outline = truth[k].astype(bool) & ~ndimage.binary_erosion(truth[k].astype(bool))
        rgb[outline] = [0.0, 255.0, 0.0]
        tiles.append(rgb.astype(np.uint8))
    Image.fromarray(np.concatenate(tiles, axis=1)).save(path)
