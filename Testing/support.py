"""Helpers shared by the test suites (importable as `support`)."""

from __future__ import annotations

import warnings

import numpy as np

from SegmentWithSAM2Lib.errors import RandomWeightsWarning
from SegmentWithSAM2Lib.io.models import load_model


def random_model(seed=0, precision="fp32"):
    """MedSAM2's 512-px architecture with random (seeded) weights on the CPU."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return load_model("medsam2-latest", random_init=True, seed=seed, device="cpu", precision=precision)


def oblique_lps_matrix(spacing=(0.7, 1.3, 2.5), degrees=20.0):
    """An IJK->LPS matrix with permuted, rotated, partly negative axes and anisotropic voxels:
    i runs roughly superior, j roughly right (negative L), k roughly posterior."""
    angle = np.deg2rad(degrees)
    rotation = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    axes = np.array([[0, -1, 0], [0, 0, 1], [1, 0, 0]], dtype=float)  # columns: i->S, j->-L, k->P
    matrix = np.eye(4)
    matrix[:3, :3] = rotation @ axes @ np.diag(spacing)
    matrix[:3, 3] = [12.0, -30.0, 55.0]
    return matrix


def litemedsam_input(image: np.ndarray):
    """Upstream's (LiteMedSAM's) preprocessing of a square slice: min-max to [0, 1], area-resized
    to 256, 3 channels; a (1, 3, 256, 256) tensor."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(image.astype(np.float32))
    x = (x - x.min()) / (x.max() - x.min())
    return F.interpolate(x[None, None], size=(256, 256), mode="area").expand(-1, 3, -1, -1).contiguous()


def box_of(mask: np.ndarray, scale: float) -> list[float]:
    """The mask's box [x0, y0, x1, y1] in pixels of a frame ``scale`` times the slice's size."""
    rows, cols = np.nonzero(mask)
    return [cols.min() * scale, rows.min() * scale, (cols.max() + 1) * scale, (rows.max() + 1) * scale]
