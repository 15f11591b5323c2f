"""Six small cases on disk for the batch suites: three good (two from prompt files, one from its
labelmap), one with a prompt outside its volume, one constant volume (checked fine, fails in
propagation: nothing to segment), one image file that is not an image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from SegmentWithSAM2Lib.core.metrics import middle_slice_box

SHAPE = (12, 40, 40)  # k, j, i
GOOD = ("case1", "case2", "case3")
BAD_PROMPTS, FAILS, UNREADABLE = "case4", "case5", "case6"


def ball(centre, radius):
    grid = np.indices(SHAPE, dtype=np.float32)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius ** 2


def write_image(array, path: Path, spacing=(0.9, 0.9, 2.5)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin((-20.0, 11.0, 4.0))
    sitk.WriteImage(image, str(path))


def make_dataset(root: Path) -> dict:
    images, prompts, labels = root / "images", root / "prompts", root / "labels"
    for folder in (images, prompts, labels):
        folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    truths = {}
    for n, case in enumerate(GOOD + (BAD_PROMPTS,)):
        truth = ball((6, 18 + 2 * n, 20 - n), 5 + n % 2).astype(np.uint8)
        image = (np.where(truth, 160, 20) + rng.normal(0, 6, SHAPE)).astype(np.int16)
        write_image(image, images / f"{case}.nii.gz")
        truths[case] = truth
    box = middle_slice_box(truths["case1"], 1, name="ball")
    (prompts / "case1.json").write_text(json.dumps(box))
    (prompts / "case2.json").write_text(json.dumps(middle_slice_box(truths["case2"], 1)))
    write_image(truths["case3"], labels / "case3.nii.gz")  # case3: prompted from its labelmap
    outside = {"space": "IJK", "objects": [{"points": [{"position": [100, 5, 5]}]}]}
    (prompts / f"{BAD_PROMPTS}.json").write_text(json.dumps(outside))
    write_image(np.zeros(SHAPE, np.int16), images / f"{FAILS}.nii.gz")
    (prompts / f"{FAILS}.json").write_text(json.dumps(box))
    (images / f"{UNREADABLE}.nii.gz").write_bytes(b"not an image at all")
    (prompts / f"{UNREADABLE}.json").write_text(json.dumps(box))
    return {"images": images, "prompts": prompts, "labels": labels, "truths": truths}
