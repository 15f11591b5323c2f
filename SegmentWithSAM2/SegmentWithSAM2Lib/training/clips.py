"""Training clips: consecutive slices through an object, as frames through the inference code,
with the object's masks and a simulated first-frame prompt (box with jitter, points or mask)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.frames import FrameSequence
from ..core.geometry import plan_slices
from ..core.inplane import InPlaneMap
from ..core.intensity import resolve_window


@dataclass
class Clip:
    frames: torch.Tensor  # T, 3, S, S
    masks: torch.Tensor  # T, S, S (float 0/1)
    prompt: dict  # {"points": (N, 2) x,y frame pixels, "labels": (N,)} or {"mask": S x S}


def sample_clip(volume, labels, label, length, image_size, rng, axis="auto", window="auto") -> Clip | None:
    """``length`` slices starting on a slice holding ``label``, in a random direction."""
    plan = plan_slices(volume, axis)
    inplane = InPlaneMap.fit(plan.slice_shape, plan.pixel_spacing, image_size)
    frames = FrameSequence(volume.array, plan, resolve_window(window, volume.array, volume.metadata), inplane)
    view = plan.view_of(labels) == label
    present = np.nonzero(view.any(axis=(1, 2)))[0]
    if present.size == 0:
        return None
    start = int(rng.choice(present))
    inward = 1 if present.max() - start >= start - present.min() else -1
    step = inward if rng.random() < 0.8 else -inward  # mostly through the object, sometimes out of its end
    indices = [min(max(start + step * t, 0), len(frames) - 1) for t in range(length)]
    images = torch.stack([frames[i] for i in indices])
    masks = torch.stack([inplane.image_to_frame(torch.from_numpy(view[i].astype(np.float32))[None])[0] for i in indices])
    masks = (masks >= 0.5).float()
    if rng.random() < 0.5:  # a left-right flip of frames and masks together
        images, masks = images.flip(-1), masks.flip(-1)
    return Clip(_augment(images, rng), masks, simulate_prompt(masks[0].numpy(), rng))


def simulate_prompt(mask: np.ndarray, rng) -> dict:
    """As SAM2 is trained: a jittered box, one or a few clicks from the object, or the mask itself."""
    rows, cols = np.nonzero(mask > 0)
    choice = rng.random()
    if choice < 0.5:
        jitter = 0.1 * np.array([np.ptp(cols) + 1, np.ptp(rows) + 1] * 2) * rng.normal(0, 1, 4)
        box = np.array([cols.min(), rows.min(), cols.max(), rows.max()], dtype=np.float32) + jitter
        return {"points": box.reshape(2, 2).astype(np.float32), "labels": np.array([2, 3])}
    if choice < 0.85:
        count = int(rng.integers(1, 4))
        picks = rng.integers(0, rows.size, count)
        return {"points": np.stack([cols[picks], rows[picks]], 1).astype(np.float32), "labels": np.ones(count, int)}
    return {"mask": mask.astype(np.float32)}


def _augment(images: torch.Tensor, rng) -> torch.Tensor:
    """Contrast/brightness jitter and noise, the same over the whole clip."""
    images = images * float(rng.uniform(0.85, 1.15)) + float(rng.normal(0, 0.1))
    return images + torch.randn_like(images) * float(rng.uniform(0, 0.05))
