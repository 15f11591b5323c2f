"""Synthetic CT-like volumes with exact labels, for the demo and tests (numpy only)."""

from __future__ import annotations

import numpy as np

from .core.volume import Volume


def synthetic_ct(shape_kji=(48, 192, 192), spacing_ijk=(0.8, 0.8, 2.5), organ_radii_mm=(32.0, 24.0, 22.0),
                 seed=0) -> tuple[Volume, np.ndarray]:
    """An abdomen-like slab: air, a body ellipse of soft tissue, a bright spine, and one ellipsoid
    'organ' (label 1) denser than its surroundings.  Returns (int16 HU volume, uint8 labels)."""
    rng = np.random.default_rng(seed)
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape_kji), indexing="ij")
    centre = [(n - 1) / 2 for n in shape_kji]
    x = (i - centre[2]) * spacing_ijk[0]
    y = (j - centre[1]) * spacing_ijk[1]
    z = (k - centre[0]) * spacing_ijk[2]
    half_width, half_depth = shape_kji[2] * spacing_ijk[0] * 0.42, shape_kji[1] * spacing_ijk[1] * 0.34
    body = (x / half_width) ** 2 + (y / half_depth) ** 2 <= 1
    hu = np.where(body, 35.0, -1000.0)
    hu[(x ** 2 + (y - half_depth * 0.7) ** 2) <= 9.0 ** 2] = 700.0  # spine
    rx, ry, rz = organ_radii_mm
    organ = ((x + 0.25 * half_width) / rx) ** 2 + ((y + 0.1 * half_depth) / ry) ** 2 + (z / rz) ** 2 <= 1
    hu[organ] = 120.0
    hu += rng.normal(0.0, 12.0, hu.shape)
    ijk_to_lps = np.diag([*spacing_ijk, 1.0])
    ijk_to_lps[:3, 3] = [-100.0, -120.0, -60.0]
    volume = Volume.from_lps(hu.astype(np.int16), ijk_to_lps, {"modality": "CT"})
    return volume, organ.astype(np.uint8)


def box_prompt_for(labels: np.ndarray, volume: Volume, label: int = 1, name: str = "organ") -> dict:
    """A RAS box around the label on its middle slice (k), as a prompt file would hold it."""
    ks, js, is_ = np.nonzero(labels == label)
    middle = int(round((ks.min() + ks.max()) / 2))
    on_slice = labels[middle] == label
    rows, cols = np.nonzero(on_slice)
    corners_ijk = [[cols.min(), rows.min(), middle], [cols.max(), rows.max(), middle]]
    ras = volume.ijk_to_ras_points(corners_ijk)
    return {"space": "RAS", "objects": [{"name": name, "label": label, "color": [0.9, 0.5, 0.1],
                                         "boxes": [{"corner1": ras[0].round(3).tolist(),
                                                    "corner2": ras[1].round(3).tolist()}]}]}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2.0 * np.logical_and(a, b).sum() / total)
