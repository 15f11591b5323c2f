"""In-plane mapping between a slice (rows x cols, possibly non-square pixels) and the model's
square S x S frame, without distorting anatomy.

The slice is scaled to square pixels and fitted into the frame with a border (zero intensity),
centred.  Everything is one separable affine map per image axis,
``frame = offset + (slice + 0.5) * scale - 0.5`` (pixel centres at integers), which is exactly
what ``F.interpolate(..., align_corners=False)`` implements between the slice and its
``size`` x ``size`` footprint, so images, prompts and masks all go through the same map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class InPlaneMap:
    slice_shape: tuple[int, int]  # rows, cols of the slice
    footprint: tuple[int, int]  # rows, cols the slice occupies in the frame
    offset: tuple[int, int]  # frame row/col where the footprint starts
    frame_size: int

    @classmethod
    def fit(cls, slice_shape, pixel_spacing, frame_size: int) -> "InPlaneMap":
        rows, cols = slice_shape
        extent = np.array([rows * pixel_spacing[0], cols * pixel_spacing[1]])
        footprint = np.maximum(1, np.round(extent / extent.max() * frame_size)).astype(int)
        offset = (frame_size - footprint) // 2
        return cls((rows, cols), tuple(int(x) for x in footprint), tuple(int(x) for x in offset), frame_size)

    @property
    def is_identity(self) -> bool:
        return self.slice_shape == self.footprint == (self.frame_size, self.frame_size)

    @property
    def scale(self) -> np.ndarray:
        return np.array(self.footprint, dtype=float) / np.array(self.slice_shape, dtype=float)

    def slice_to_frame(self, rows_cols) -> np.ndarray:
        """Continuous (row, col) slice coordinates -> (row, col) frame coordinates."""
        rc = np.atleast_2d(np.asarray(rows_cols, dtype=float))
        return np.asarray(self.offset) + (rc + 0.5) * self.scale - 0.5

    def frame_to_slice(self, rows_cols) -> np.ndarray:
        rc = np.atleast_2d(np.asarray(rows_cols, dtype=float))
        return (rc - np.asarray(self.offset) + 0.5) / self.scale - 0.5

    def image_to_frame(self, image: torch.Tensor) -> torch.Tensor:
        """(C, rows, cols) slice image -> (C, S, S) frame; the border is 0."""
        if self.is_identity:
            return image
        scaled = _resize(image[None], self.footprint)[0]
        frame = image.new_zeros((image.shape[0], self.frame_size, self.frame_size))
        r0, c0 = self.offset
        frame[:, r0:r0 + self.footprint[0], c0:c0 + self.footprint[1]] = scaled
        return frame

    def frame_to_image(self, frame: torch.Tensor) -> torch.Tensor:
        """(N, S, S) frame-space values (e.g. mask logits) -> (N, rows, cols) on the slice grid."""
        if self.is_identity:
            return frame
        r0, c0 = self.offset
        crop = frame[:, r0:r0 + self.footprint[0], c0:c0 + self.footprint[1]]
        return _resize(crop[None], self.slice_shape)[0]


def _resize(batch: torch.Tensor, size) -> torch.Tensor:
    size = tuple(int(s) for s in size)
    if tuple(batch.shape[-2:]) == size:
        return batch
    shrinking = size[0] < batch.shape[-2] or size[1] < batch.shape[-1]
    return F.interpolate(batch, size=size, mode="bilinear", align_corners=False, antialias=shrinking)
