"""Synthetic CT- and MR-like volumes with exact labels: training data, behaviour tests, the demo.

``synthetic_volume``: smooth blobs (deformed ellipsoids), tubes (curved cylinders), shells and
twin lobes that begin and end inside the volume, sometimes touching, on textured backgrounds;
intensities CT-like (HU) or MR-like (arbitrary units with a bias field).  ``demo_ct`` is the
preset the demo segments: an abdomen-like slab with one organ.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .core.volume import Volume
from .options import look_up


def synthetic_volume(rng: np.random.Generator, shape_kji=(32, 96, 96), objects=2, modality="CT", shapes=None):
    """(Volume, labels uint8 [k, j, i]) with ``objects`` labelled structures (1..objects).

    ``shapes``: names from SHAPES to draw from uniformly; None is the default mix (blobs 70 %,
    tubes 30 %), the one the shipped micro model was trained on.  "twins" makes the scene two
    touching lobes of one intensity, brighter or darker than their surroundings (labels 1 and 2):
    only the prompts can tell them apart.
    """
    grid = np.indices(shape_kji, dtype=np.float32)
    twins = shapes is not None and "twins" in shapes and rng.random() < 1 / len(shapes)
    labels = _twins(grid, shape_kji, rng) if twins else np.zeros(shape_kji, dtype=np.uint8)
    objects = 2 if twins else objects
    for label in range(1, objects + 1) if not twins else ():
        if shapes is None:
            shape = _blob(grid, shape_kji, rng) if rng.random() < 0.7 else _tube(grid, shape_kji, rng)
        else:
            kinds = [k for k in shapes if k != "twins"] or ["blob"]
            shape = SHAPES[kinds[int(rng.integers(len(kinds)))]](grid, shape_kji, rng)
        labels[shape & (labels == 0)] = label
    background = ndimage.gaussian_filter(rng.normal(0, 1, shape_kji).astype(np.float32), sigma=rng.uniform(1, 3))
    contrast = rng.uniform(0.6, 1.6, objects + 1)
    if modality == "CT":
        levels = _levels(rng.uniform(-50, 60), objects, (-80, 250), 45, rng)
        if twins:
            levels[1:] = levels[0] + rng.choice([-1, 1]) * rng.uniform(60, 200)
        values = levels[labels] + 25 * background * contrast[labels] + rng.normal(0, rng.uniform(5, 20), shape_kji)
    else:
        levels = _levels(rng.uniform(200, 500), objects, (100, 1200), 150, rng)
        if twins:
            levels[1:] = levels[0] * rng.choice([rng.uniform(0.2, 0.6), rng.uniform(1.5, 3.0)])
        bias = 1 + 0.2 * np.sin(grid[2] / shape_kji[2] * np.pi * rng.uniform(0.5, 2))
        values = (levels[labels] + 60 * background * contrast[labels]) * bias + rng.normal(0, 15, shape_kji)
    spacing = (rng.uniform(0.5, 1.2), rng.uniform(0.5, 1.2), rng.uniform(1.0, 3.0))
    volume = Volume(values.astype(np.float32), np.diag([*spacing, 1.0]), {"modality": modality})
    return volume, labels


def _levels(background, objects, span, separation, rng):
    """Background level first, then one per object, each at least ``separation`` from the
    background: an object drawn at the background's level is invisible and teaches nothing."""
    levels = [background]
    while len(levels) <= objects:
        level = rng.uniform(*span)
        if abs(level - background) >= separation:
            levels.append(level)
    return np.array(levels)


def _blob(grid, shape, rng):
    centre = [rng.uniform(0.3, 0.7) * n for n in shape]
    radii = [rng.uniform(0.12, 0.3) * shape[0]] + [rng.uniform(0.08, 0.22) * n for n in shape[1:]]
    r = sum(((g - c) / rr) ** 2 for g, c, rr in zip(grid, centre, radii))
    wobble = 0.25 * np.sin(grid[1] / rng.uniform(4, 9)) * np.cos(grid[2] / rng.uniform(4, 9))
    return r + wobble <= 1.0


def _tube(grid, shape, rng):
    k0, k1 = sorted(rng.uniform(0.15, 0.85, 2) * shape[0])
    t = np.clip((grid[0] - k0) / max(k1 - k0, 1), 0, 1)
    cj = shape[1] * (0.3 + 0.4 * t + 0.1 * np.sin(3 * t * rng.uniform(0.5, 2)))
    ci = shape[2] * (0.3 + 0.4 * rng.random() + 0.1 * np.cos(2 * t))
    radius = rng.uniform(0.05, 0.1) * shape[1]
    return ((grid[1] - cj) ** 2 + (grid[2] - ci) ** 2 <= radius ** 2) & (grid[0] >= k0) & (grid[0] <= k1)


def _shell(grid, shape, rng):
    """The wall of a hollow organ (a bladder, a cyst): a deformed ellipsoidal shell whose inside
    stays at the background's intensity and is not part of the object."""
    centre = [rng.uniform(0.4, 0.6) * n for n in shape]
    radii = [rng.uniform(0.25, 0.35) * shape[0]] + [rng.uniform(0.18, 0.28) * n for n in shape[1:]]
    r = sum(((g - c) / rr) ** 2 for g, c, rr in zip(grid, centre, radii))
    return (r <= 1.0) & (r >= rng.uniform(0.45, 0.6))


def _twins(grid, shape, rng):
    """Two ellipsoidal lobes side by side along a random in-plane axis, touching: labels 1, 2."""
    axis = int(rng.integers(1, 3))
    radii = [rng.uniform(0.2, 0.3) * shape[0]] + [rng.uniform(0.1, 0.16) * n for n in shape[1:]]
    centre = [rng.uniform(0.4, 0.6) * n for n in shape]
    centre[axis] = rng.uniform(0.32, 0.4) * shape[axis]
    second = list(centre)
    second[axis] = centre[axis] + 2 * radii[axis] * rng.uniform(0.75, 0.95)  # a clear junction
    lobes = [sum(((g - c) / r) ** 2 for g, c, r in zip(grid, at, radii)) <= 1.0 for at in (centre, second)]
    labels = np.zeros(shape, dtype=np.uint8)
    labels[lobes[1]] = 2
    labels[lobes[0]] = 1
    return labels


SHAPES = {"blob": _blob, "tube": _tube, "shell": _shell, "twins": None}  # twins: a whole scene


def parse_shapes(text: str | None):
    """'blob,shell' -> ("blob", "shell"); None keeps the default mix."""
    if not text:
        return None
    return tuple(look_up(part.strip(), tuple(SHAPES), "synthetic shape") for part in text.split(","))


def demo_ct(shape_kji=(48, 192, 192), spacing_ijk=(0.8, 0.8, 2.5), organ_radii_mm=(32.0, 24.0, 22.0),
            seed=0) -> tuple[Volume, np.ndarray]:
    """An abdomen-like slab: air, a body ellipse of soft tissue, a bright spine, and one ellipsoid
    'organ' (label 1) denser than its surroundings.  Returns (int16 HU volume, uint8 labels)."""
    rng = np.random.default_rng(seed)
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape_kji), indexing="ij")
    centre = [(n - 1) / 2 for n in shape_kji]
    x, y, z = ((axis - c) * s for axis, c, s in zip((i, j, k), centre[::-1], spacing_ijk))
    half_width, half_depth = shape_kji[2] * spacing_ijk[0] * 0.42, shape_kji[1] * spacing_ijk[1] * 0.34
    hu = np.where((x / half_width) ** 2 + (y / half_depth) ** 2 <= 1, 35.0, -1000.0)
    hu[(x ** 2 + (y - half_depth * 0.7) ** 2) <= 9.0 ** 2] = 700.0  # spine
    rx, ry, rz = organ_radii_mm
    organ = ((x + 0.25 * half_width) / rx) ** 2 + ((y + 0.1 * half_depth) / ry) ** 2 + (z / rz) ** 2 <= 1
    hu[organ] = 120.0
    hu += rng.normal(0.0, 12.0, hu.shape)
    ijk_to_lps = np.diag([*spacing_ijk, 1.0])
    ijk_to_lps[:3, 3] = [-100.0, -120.0, -60.0]
    return Volume.from_lps(hu.astype(np.int16), ijk_to_lps, {"modality": "CT"}), organ.astype(np.uint8)
