"""The ways people run SAM2 on a volume today, reproduced (not copied) for benchmarks:

- ``official``: sam2's ``SAM2VideoPredictor`` as a careful user writes it: frames prepared in
  memory (the slice windowed to 0..1, resized to the model's size, ImageNet-normalised, as sam2's
  own loader does), fp32, one fresh state per direction from the prompted slice, every slice,
  masks returned at the slice's size;
- ``jpeg``: the approach of earlier Slicer extensions: every slice written as a JPEG with its own
  min-max contrast, ``init_state(video_path=folder)``, forward then reverse on the same state.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sam2 import sam2_video_predictor

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


def official_frames(slices: np.ndarray, lower: float, upper: float, image_size: int) -> torch.Tensor:
    """[N, 3, S, S] from [N, H, W] slices, all at once as sam2's loader does: window to 0..255,
    /255, resize to the model's size (sam2 does not keep the aspect), ImageNet-normalise."""
    gray = (slices.astype(np.float32) - np.float32(lower)) * np.float32(255.0 / (upper - lower))
    gray = torch.from_numpy(np.clip(gray, 0.0, 255.0))[:, None] / 255.0
    if gray.shape[-2:] != (image_size, image_size):
        gray = F.interpolate(gray, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return (gray.expand(-1, 3, -1, -1) - IMAGENET_MEAN) / IMAGENET_STD


@contextlib.contextmanager
def frames_in_memory(frames: torch.Tensor, height: int, width: int):
    """sam2's ``init_state`` takes its frames from us instead of a folder of JPEGs."""
    original = sam2_video_predictor.load_video_frames
    sam2_video_predictor.load_video_frames = lambda **_: (frames, height, width)
    try:
        yield
    finally:
        sam2_video_predictor.load_video_frames = original


def official(predictor, slices, window, prompted: int, box, object_id=1) -> np.ndarray:
    """Labelmap [N, H, W] from one box (x0, y0, x1, y1 in slice pixels) on slice ``prompted``."""
    count, height, width = slices.shape
    frames = official_frames(slices, *window, predictor.image_size)
    out = np.zeros(slices.shape, dtype=np.uint8)
    with torch.inference_mode(), frames_in_memory(frames, height, width):
        for reverse in (False, True):
            state = predictor.init_state(video_path="in-memory")
            predictor.add_new_points_or_box(state, prompted, object_id, box=np.asarray(box, np.float32))
            for k, _, masks in _quiet(predictor.propagate_in_video(state, start_frame_idx=prompted, reverse=reverse)):
                out[k] = (masks[0, 0] > 0).cpu().numpy()
    return out


def jpeg(predictor, slices, prompted: int, box, object_id=1) -> np.ndarray:
    """The JPEG-folder approach; per-slice min-max contrast, one state for both directions."""
    from PIL import Image

    out = np.zeros(slices.shape, dtype=np.uint8)
    with tempfile.TemporaryDirectory() as folder, torch.inference_mode():
        for k, image in enumerate(slices):
            low, high = float(image.min()), float(image.max())
            gray = ((image - low) / max(high - low, 1e-6) * 255).astype(np.uint8)
            Image.fromarray(gray).convert("RGB").save(Path(folder) / f"{k:05d}.jpg", quality=95)
        state = predictor.init_state(video_path=folder)
        predictor.add_new_points_or_box(state, prompted, object_id, box=np.asarray(box, np.float32))
        for reverse in (False, True):
            for k, _, masks in _quiet(predictor.propagate_in_video(state, start_frame_idx=prompted, reverse=reverse)):
                out[k] = (masks[0, 0] > 0).cpu().numpy()
    return out


def _quiet(frames):
    original = sam2_video_predictor.tqdm
    sam2_video_predictor.tqdm = lambda iterable, **_: iterable
    try:
        yield from frames
    finally:
        sam2_video_predictor.tqdm = original
