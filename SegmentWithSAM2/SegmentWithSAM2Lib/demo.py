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


def run_demo(output_dir, model, on_progress=None, sample: str = "phantom") -> DemoResult:
    """Segment a sample with ``model`` from one box on its object's middle slice, write the result,
    its prompts and an overlay into ``output_dir``, and score it against the sample's label.
    ``phantom``: the synthetic CT (also written, as sample_ct.nrrd); ``lung2``: pyradiomics'
    lung CT and its tumour (io.sample_data: fetched once from the package index)."""
    from . import api
    from .io.atomic import write_text_atomic

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    volume, truth, window, result_name = _sample(sample, out)
    prompts = in_ras(middle_slice_box(truth, 1, name="tumour" if sample != "phantom" else "organ",
                                      color=(0.9, 0.5, 0.1)), volume)
    write_text_atomic(out / "prompts.json", json.dumps(prompts, indent=2))
    result = api.segment(model, volume, prompts, window=window, on_progress=on_progress)
    api.write_result(result, out / result_name, overwrite=True)  # the demo's own folder
    save_overlay(volume, result.labelmap, truth, out / "overlay.png", window=window)
    return DemoResult(out / result_name, out / "overlay.png", dice(result.labelmap == 1, truth),
                      result.seconds, result.slices_processed)


def _sample(sample: str, out: Path):
    """(volume, truth uint8, window, result file name) of a demo sample."""
    from .options import SAMPLES, look_up

    look_up(sample, SAMPLES, "demo sample")
    if sample == "phantom":
        from .io.labelmaps import write_labelmap
        from .synthetic import demo_ct

        volume, truth = demo_ct()
        write_labelmap(volume.array, volume, out / "sample_ct.nrrd")
        return volume, truth, "soft-tissue", "sample_ct_seg.nii.gz"
    from .io.sample_data import pyradiomics_case
    from .io.volume_files import read_volume

    image, label = pyradiomics_case(sample)
    return read_volume(image), (read_volume(label).array > 0).astype(np.uint8), "lung", f"{sample}_seg.seg.nrrd"


def in_ras(prompts: dict, volume) -> dict:
    """An IJK box prompt with its corners in RAS millimetres (to 1 µm), as a prompt file holds them."""
    objects = []
    for obj in prompts["objects"]:
        boxes = [{key: volume.ijk_to_ras_points([box[key]])[0].round(3).tolist() for key in ("corner1", "corner2")}
                 for box in obj["boxes"]]
        objects.append({**obj, "boxes": boxes})
    return {"space": "RAS", "objects": objects}


def save_overlay(volume, labelmap, truth, path, count=4, window="soft-tissue") -> None:
    """A few axial slices across the object, in ``window``: the result in orange, the truth outlined."""
    from PIL import Image
    from scipy import ndimage

    from .core.intensity import resolve_window

    slices = np.nonzero(truth.any(axis=(1, 2)))[0]
    if slices.size == 0:
        raise SegmentWithSAM2Error("the sample has no labelled slices")
    picks = np.linspace(slices.min(), slices.max(), count).round().astype(int)
    window = resolve_window(window, volume.array, volume.metadata)
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
