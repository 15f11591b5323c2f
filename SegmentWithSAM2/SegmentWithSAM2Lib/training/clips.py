"""Training clips: consecutive slices through an object, as frames through the inference code,
with the object's masks and a simulated first-frame prompt (box with jitter, points or mask)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..core.frames import IMAGENET, FrameSequence
from ..core.geometry import plan_slices
from ..core.inplane import InPlaneMap
from ..core.intensity import resolve_window


@dataclass(frozen=True)
class PromptSampling:
    """How first-frame prompts are simulated, beyond SAM2's own mix (boxes, clicks, masks).

    ``leak_corrections``: the share of clips, where a neighbouring object is on the first frame,
    that start as the correction of a leak: an earlier mask taking the object and its neighbour,
    with negative clicks on the neighbour, as a radiologist corrects a propagated slice.  On by
    default: a model fine-tuned without it learns to ignore negative clicks (micro before its
    stage 4: a negative click on a leak moved the slice's Dice 0.604 -> 0.612; after, 0.972).
    0 draws nothing from the random stream, so runs made without it (micro's stages 0-3) replay.
    """

    leak_corrections: float = 0.3


@dataclass
class Clip:
    frames: torch.Tensor  # T, 3, S, S
    masks: torch.Tensor  # T, S, S (float 0/1)
    prompt: dict  # {"points": (N, 2) x,y frame pixels, "labels": (N,)} or {"mask": S x S}

    def to(self, device) -> "Clip":
        """The clip on the model's device (clips are sampled on the CPU)."""
        return Clip(self.frames.to(device), self.masks.to(device), self.prompt)


def sample_clip(volume, labels, label, length, image_size, rng, axis="auto", window=None,
                sampling: PromptSampling = PromptSampling(leak_corrections=0.0), normalization=IMAGENET,
                augment: bool = True, exits: float = 0.0) -> Clip | None:
    """``length`` slices starting on a slice holding ``label``, in a random direction; ``window``
    None draws one (the inference default half the time, otherwise a jittered one);
    ``normalization``: the model's (core.frames.frame_normalization); ``augment`` False: no zoom
    and no intensity changes (only left-right flips), so that frames repeat (training.feature_memo);
    ``exits``: the share of clips that start near one end of the object and run out of it, so that
    the object score learns where an object ends (drawn only when non-zero: older runs replay)."""
    plan = plan_slices(volume, axis)
    inplane = InPlaneMap.fit(plan.slice_shape, plan.pixel_spacing, image_size)
    window = window or _random_window(volume.metadata.get("modality"), rng)
    frames = FrameSequence(volume.array, plan, resolve_window(window, volume.array, volume.metadata), inplane,
                           normalization)
    view = plan.view_of(labels)
    present = np.nonzero((view == label).any(axis=(1, 2)))[0]
    if present.size == 0:
        return None
    start, step = _start(present, length, rng, exits)
    indices = [min(max(start + step * t, 0), len(frames) - 1) for t in range(length)]
    images = torch.stack([frames[i] for i in indices])
    masks = torch.stack([_to_frame(inplane, view[i] == label) for i in indices])
    others = _to_frame(inplane, (view[start] != label) & (view[start] > 0))[None]
    if rng.random() < 0.5:  # a left-right flip of frames and masks together
        images, masks, others = images.flip(-1), masks.flip(-1), others.flip(-1)
    zoom = float(np.exp(rng.uniform(-0.5, 0.4))) if augment else 1.0
    images, masks, others = _zoom([images, masks[:, None], others[:, None]], zoom)
    masks, others = (masks[:, 0] >= 0.5).float(), others[0, 0].numpy() >= 0.5
    if not masks[0].any():
        return None
    images = _augment(images, rng) if augment else images
    return Clip(images, masks, simulate_prompt(masks[0].numpy(), rng, others, sampling.leak_corrections))


def _start(present: np.ndarray, length: int, rng, exits: float) -> tuple[int, int]:
    """A clip's first slice and direction: mostly into the object; with ``exits``, that share of
    clips starts on one of its last ``length - 1`` slices at an end and steps out of it."""
    if exits and rng.random() < exits:
        outward = 1 if rng.random() < 0.5 else -1
        end = present.max() if outward == 1 else present.min()
        return int(end - outward * rng.integers(0, max(length - 1, 1))), outward
    start = int(rng.choice(present))
    inward = 1 if present.max() - start >= start - present.min() else -1
    return start, inward if rng.random() < 0.8 else -inward  # mostly through the object, sometimes out of its end


def simulate_prompt(mask: np.ndarray, rng, others: np.ndarray | None = None, leak: float = 0.0) -> dict:
    """As SAM2 is trained: a jittered box, one or a few clicks from the object, or the mask
    itself; clicks and boxes sometimes come with negative clicks on a neighbour or next to the object.

    With probability ``leak``, when a neighbour is there: the correction of a leak instead
    (PromptSampling.leak_corrections)."""
    if leak and others is not None and others.any() and rng.random() < leak:
        negatives = _negative_clicks(mask > 0, others, rng, on_neighbour=True)
        return {"points": negatives, "labels": np.zeros(len(negatives), int),
                "leaked": ((mask > 0) | others).astype(np.float32)}
    rows, cols = np.nonzero(mask > 0)
    choice = rng.random()
    if choice < 0.5:
        jitter = 0.1 * np.array([np.ptp(cols) + 1, np.ptp(rows) + 1] * 2) * rng.normal(0, 1, 4)
        box = np.array([cols.min(), rows.min(), cols.max(), rows.max()], dtype=np.float32) + jitter
        prompt = {"points": box.reshape(2, 2).astype(np.float32), "labels": np.array([2, 3])}
    elif choice < 0.85:
        count = int(rng.integers(1, 4))
        picks = rng.integers(0, rows.size, count)
        prompt = {"points": np.stack([cols[picks], rows[picks]], 1).astype(np.float32), "labels": np.ones(count, int)}
    else:
        return {"mask": mask.astype(np.float32)}
    if rng.random() < 0.35:
        negatives = _negative_clicks(mask > 0, others, rng)
        prompt = {"points": np.concatenate([prompt["points"], negatives]),
                  "labels": np.concatenate([prompt["labels"], np.zeros(len(negatives), int)])}
    return prompt


def _negative_clicks(mask, others, rng, on_neighbour=False) -> np.ndarray:
    """One or two clicks on a neighbouring object when there is one, else just outside the object."""
    has_neighbour = others is not None and others.any()
    region = others if has_neighbour and (on_neighbour or rng.random() < 0.7) else \
        ndimage.binary_dilation(mask, iterations=int(rng.integers(3, 12))) & ~mask
    rows, cols = np.nonzero(region)
    picks = rng.integers(0, rows.size, int(rng.integers(1, 3)))
    return np.stack([cols[picks], rows[picks]], 1).astype(np.float32)


def _random_window(modality, rng) -> str:
    if rng.random() < 0.5:
        return "auto"
    if modality == "CT":
        return f"{40 + rng.normal(0, 40):.0f},{rng.uniform(250, 700):.0f}"
    return f"percentile:{rng.uniform(0, 3):.1f},{rng.uniform(97, 100):.1f}"


def _to_frame(inplane, mask: np.ndarray) -> torch.Tensor:
    return inplane.image_to_frame(torch.from_numpy(mask.astype(np.float32))[None])[0]


def _zoom(tensors, factor: float):
    """The same in-plane scale change (about the centre) for every tensor [N, C, S, S]: objects of
    other sizes and pixel spacings than the synthetic volumes have."""
    theta = torch.tensor([[1 / factor, 0, 0], [0, 1 / factor, 0]], dtype=torch.float32)
    out = []
    for t in tensors:
        grid = F.affine_grid(theta.expand(len(t), 2, 3), list(t.shape), align_corners=False)
        out.append(F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    return out


def _augment(images: torch.Tensor, rng) -> torch.Tensor:
    """Contrast/brightness jitter and noise, the same over the whole clip."""
    images = images * float(rng.uniform(0.85, 1.15)) + float(rng.normal(0, 0.1))
    return images + torch.randn_like(images) * float(rng.uniform(0, 0.05))
