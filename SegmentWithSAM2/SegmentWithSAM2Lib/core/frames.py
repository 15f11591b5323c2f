"""Frames for sam2, computed slice by slice from the in-memory volume (no image files).

sam2's predictor only calls ``len(images)`` and ``images[i]`` after loading, so this lazy
sequence stands in for its JPEG loader.  Each item is a normalized float32 3 x S x S tensor.
"""

from __future__ import annotations

import numpy as np
import torch

from .geometry import SlicePlan
from .inplane import InPlaneMap
from .intensity import Window

# sam2 was trained on ImageNet-normalized RGB frames.
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
IMAGENET = (IMAGENET_MEAN, IMAGENET_STD)


def frame_normalization(predictor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (mean, std) a model's frames are normalised with: ImageNet's, as sam2 was trained,
    unless the model class says otherwise (core.lite.LitePredictor: none, frames in [0, 1])."""
    return getattr(predictor, "frame_normalization", IMAGENET)


class FrameSequence:
    def __init__(self, array: np.ndarray, plan: SlicePlan, window: Window, inplane: InPlaneMap,
                 normalization: tuple[torch.Tensor, torch.Tensor] = IMAGENET):
        self.slices = plan.view_of(array)  # a view; the volume's voxels are only read
        self.window = window
        self.inplane = inplane
        self.mean, self.std = normalization

    def __len__(self) -> int:
        return self.slices.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        if not -len(self) <= index < len(self):
            raise IndexError(f"slice {index} is outside 0..{len(self) - 1}")
        return self.frame(self.windowed_slice(index))

    def windowed_slice(self, index: int) -> np.ndarray:
        """The slice mapped to 0..255 (float32, rows x cols)."""
        return self.window.apply(self.slices[index])

    def frame(self, windowed: np.ndarray) -> torch.Tensor:
        gray = torch.from_numpy(np.ascontiguousarray(windowed))[None] / 255.0
        gray = self.inplane.image_to_frame(gray)
        return (gray.expand(3, -1, -1) - self.mean) / self.std
