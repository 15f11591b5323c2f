"""``segment-with-sam2 demo``: a bundled synthetic CT, segmented end to end from one box."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .errors import SegmentWithSAM2Error

DEMO_MODEL = "micro"  # shipped in model_zoo/micro/, so the demo segments for real on any machine


def run_demo(args) -> int:
    from . import api
    from .cli import model_from_args
    from .core.registry import checkpoint_path, model_spec
    from .io.images import write_labelmap
    from .progress import ProgressBar
    from .samples import box_prompt_for, dice, synthetic_ct

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    volume, truth = synthetic_ct()
    prompts = box_prompt_for(truth, volume)
    write_labelmap(volume.array, volume, out / "sample_ct.nrrd")
    (out / "prompts.json").write_text(json.dumps(prompts, indent=2))
    model_id = args.model or DEMO_MODEL
    if not (args.checkpoint or args.config):
        args.model = model_id
    if not (args.checkpoint or args.random_init or checkpoint_path(model_spec(model_id)).is_file()):
        print(f"No trained weights for {model_id} on this machine, so the demo runs its architecture with "
              "RANDOM WEIGHTS: the mask below is not a real segmentation.", file=sys.stderr)
        args.random_init = True
    model = model_from_args(args)
    print(f"model {model.model_id}, weights {model.weights}", file=sys.stderr)
    if model.model_id == DEMO_MODEL:
        print("micro is the project's demonstration and test model, trained on synthetic volumes and a brain "
              "atlas: NOT FOR CLINICAL USE.", file=sys.stderr)
    with ProgressBar() as bar:
        result = api.segment(model, volume, prompts, window="soft-tissue", on_progress=bar.update)
    api.write_result(result, out / "sample_ct_seg.nii.gz")
    save_overlay(volume, result.labelmap, truth, out / "overlay.png")
    score = dice(result.labelmap == 1, truth)
    print(f"wrote {out / 'sample_ct_seg.nii.gz'} and {out / 'overlay.png'}; weights: {model.weights}; "
          f"Dice against the sample's known label: {score:.3f}; {result.seconds:.1f} s, slices {result.slices_processed}")
    return 0


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
