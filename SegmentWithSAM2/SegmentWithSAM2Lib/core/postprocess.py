"""Per-slice clean-up of predicted masks (on the CPU, in our code) and the object -> label merge.

sam2 fills small holes only through its CUDA extension; here hole filling and island removal
are explicit, switchable, and measured in mm^2 so that they mean the same at any pixel size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class PostProcess:
    max_hole_mm2: float = 25.0  # enclosed background up to this area becomes foreground
    min_island_mm2: float = 10.0  # smaller components go, except each object's largest one


def clean_mask(mask: np.ndarray, pixel_area_mm2: float, options: PostProcess) -> np.ndarray:
    if not mask.any():
        return mask
    holes = ndimage.binary_fill_holes(mask) & ~mask
    if holes.any():
        mask = mask | _components_up_to(holes, options.max_hole_mm2 / pixel_area_mm2)
    return _drop_small_islands(mask, options.min_island_mm2 / pixel_area_mm2)


def _components_up_to(mask: np.ndarray, max_pixels: float) -> np.ndarray:
    labels, count = ndimage.label(mask)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes <= max_pixels
    keep[0] = False
    return keep[labels]


def _drop_small_islands(mask: np.ndarray, min_pixels: float) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= min_pixels
    keep[np.argmax(sizes[1:]) + 1] = True
    keep[0] = False
    return keep[labels]


def merge_objects(logits: np.ndarray, labels, pixel_area_mm2: float, options: PostProcess | None) -> np.ndarray:
    """(objects, rows, cols) logits -> one label image; where objects overlap the higher logit wins."""
    masks = logits > 0
    if options is not None:
        masks = np.stack([clean_mask(m, pixel_area_mm2, options) for m in masks])
    scores = np.where(masks, logits, -np.inf)
    winner = np.argmax(scores, axis=0)
    label_values = np.asarray(labels)[winner]
    return np.where(masks.any(axis=0), label_values, 0)


def keep_largest_components(labelmap: np.ndarray, labels) -> None:
    """Each object's largest 3D connected component (26-connectivity), in place; the first in
    scan order on a tie (as MedSAM2's scripts keep it)."""
    structure = np.ones((3, 3, 3), dtype=bool)
    for label in labels:
        mask = labelmap == label
        components, count = ndimage.label(mask, structure=structure)
        if count > 1:
            largest = np.argmax(np.bincount(components.ravel())[1:]) + 1
            labelmap[mask & (components != largest)] = 0
