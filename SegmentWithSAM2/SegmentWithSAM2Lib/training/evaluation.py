"""Evaluation: Dice, 95 % Hausdorff distance and normalized surface distance (MONAI's metrics,
in millimetres with the volume's spacing) per case, for the engine and for a classical baseline
run from the same prompt (SimpleITK's confidence-connected region growing from the box centre).

Protocols: ``box`` — one box on the object's middle slice (RECIST-like, as in MedSAM2's papers);
``point`` — one positive point at the object's deepest pixel on that slice.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ..core.engine import PropagationOptions, VolumeSession
from .validation import middle_slice_box

PROTOCOLS = ("box", "point")
NSD_TOLERANCE_MM = 2.0


def prompt_for(labels: np.ndarray, label: int, protocol: str) -> dict:
    prompts = middle_slice_box(labels, label)
    if protocol == "point":
        middle = prompts["objects"][0]["boxes"][0]["corner1"][2]
        depth = ndimage.distance_transform_edt(labels[middle] == label)
        j, i = np.unravel_index(int(np.argmax(depth)), depth.shape)
        prompts["objects"][0] = {"label": label, "points": [{"position": [int(i), int(j), middle], "positive": True}]}
    return prompts


def scores(prediction: np.ndarray, truth: np.ndarray, spacing_kji) -> dict:
    """Dice, HD95 (mm) and NSD at 2 mm between two boolean volumes [k, j, i]."""
    from monai.metrics import compute_dice, compute_hausdorff_distance, compute_surface_dice

    p = torch.from_numpy(prediction.astype(np.float32))[None, None]
    t = torch.from_numpy(truth.astype(np.float32))[None, None]
    onehot = lambda x: torch.cat([1 - x, x], dim=1)  # noqa: E731  (background, object)
    dice = float(compute_dice(onehot(p), onehot(t), include_background=False)[0, 0])
    if not prediction.any() or not truth.any():
        return {"dice": dice, "hd95": float("inf"), "nsd": 0.0}
    hd95 = float(compute_hausdorff_distance(onehot(p), onehot(t), percentile=95, spacing=list(spacing_kji))[0, 0])
    nsd = float(compute_surface_dice(onehot(p), onehot(t), [NSD_TOLERANCE_MM], spacing=list(spacing_kji))[0, 0])
    return {"dice": dice, "hd95": hd95, "nsd": nsd}


def engine_mask(model, volume, labels, label, protocol, axis="k", window="auto") -> np.ndarray:
    result = VolumeSession(model, volume, axis=axis, window=window).propagate(
        prompt_for(labels, label, protocol), PropagationOptions())
    return result.labelmap == label


def region_growing_mask(volume, labels, label) -> np.ndarray:
    """The classical baseline: confidence-connected growing from the prompt's box centre."""
    import SimpleITK as sitk

    box = middle_slice_box(labels, label)["objects"][0]["boxes"][0]
    seed = [int(round((a + b) / 2)) for a, b in zip(box["corner1"], box["corner2"])]
    image = sitk.GetImageFromArray(np.asarray(volume.array, dtype=np.float32))
    grown = sitk.ConfidenceConnected(image, seedList=[tuple(seed)], numberOfIterations=2, multiplier=2.0,
                                     initialNeighborhoodRadius=1, replaceValue=1)
    return sitk.GetArrayFromImage(grown).astype(bool)


def evaluate(model, cases, protocol="box") -> list[dict]:
    """[{case, method, dice, hd95, nsd}] for the engine and the baseline on every labelled object."""
    rows = []
    for name, volume, labels in cases:
        spacing_kji = tuple(float(s) for s in volume.spacing[::-1])
        for label in [int(v) for v in np.unique(labels) if v > 0]:
            truth = labels == label
            for method, mask in (("engine", engine_mask(model, volume, labels, label, protocol)),
                                 ("region growing", region_growing_mask(volume, labels, label))):
                rows.append({"case": f"{name}:{label}", "method": method, **scores(mask, truth, spacing_kji)})
    return rows
