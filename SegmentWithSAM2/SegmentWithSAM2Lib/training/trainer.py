"""The training loop on sam2's model code: clips tracked frame by frame through the memory,
AdamW with warm-up and cosine decay, resumable checkpoints, a validation Dice per epoch."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..io.atomic import save_torch_atomic
from .feature_memo import memoized_trunk
from .losses import OBJECT_WEIGHT, frame_loss


@dataclass
class TrainSettings:
    steps: int = 1000
    clip_length: int = 4
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup: int = 50
    checkpoint_every: int = 200
    seed: int = 0
    autocast: object = None  # a context factory (LoadedModel.autocast): bf16 where the hardware has it
    memo_frames: int = 0  # a frozen image-encoder trunk's outputs kept for this many frames (feature_memo)
    object_weight: float = OBJECT_WEIGHT  # the object-presence loss's weight (losses.frame_loss)


def clip_loss(model, clip, rng=None, object_weight=OBJECT_WEIGHT) -> torch.Tensor | None:
    """Track one clip: frame 0 conditioned on its prompt, the rest from memory (the loss in fp32).

    With ``rng``, a clicked first frame sometimes gets corrective clicks as in SAM2's training:
    a click sampled from the current error (positive where missed, negative where leaked) is
    added and the frame predicted again from its previous logits, a loss on every prediction.
    """
    size, device = model.image_size, next(model.parameters()).device
    clip = clip.to(device)
    backbone = model.forward_image(clip.frames)
    _, feats, pos, feat_sizes = model._prepare_backbone_features(backbone)
    outputs = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
    total, terms = 0.0, 0
    for t in range(len(clip.frames)):
        points = masks = previous = None
        if t == 0 and "mask" in clip.prompt:
            masks = torch.as_tensor(clip.prompt["mask"], device=device)[None, None]
        elif t == 0:
            points = {"point_coords": torch.as_tensor(clip.prompt["points"], device=device)[None],
                      "point_labels": torch.as_tensor(clip.prompt["labels"], dtype=torch.int32, device=device)[None]}
            if "leaked" in clip.prompt:  # a correction: the clicks come with the earlier, leaking mask
                previous = _as_logits(clip.prompt["leaked"], model.sam_prompt_encoder.mask_input_size, device)
        corrections = _corrections(rng) if points is not None else 0
        frame_feats, frame_pos = [x[:, t:t + 1] for x in feats], [x[:, t:t + 1] for x in pos]
        for round_ in range(corrections + 1):
            out, sam, _, _ = model._track_step(t, t == 0, frame_feats, frame_pos, feat_sizes, points, masks, outputs,
                                               len(clip.frames), False, previous)
            _, high_multi, ious, low_res, high_res, obj_ptr, object_score = sam
            if masks is None:
                high_multi = F.interpolate(high_multi, size=(size, size), mode="bilinear", align_corners=False)
                total = total + frame_loss(high_multi.float(), ious.float(), object_score.float(), clip.masks[t],
                                           object_weight)
                terms += 1
            click = _error_click(high_res, clip.masks[t], rng) if round_ < corrections else None
            if click is None:
                break
            points = {"point_coords": torch.cat([points["point_coords"], click[0].to(device)], 1),
                      "point_labels": torch.cat([points["point_labels"], click[1].to(device)], 1)}
            previous = low_res.detach().clamp(-32.0, 32.0)
        out.update(pred_masks=low_res, pred_masks_high_res=high_res, obj_ptr=obj_ptr)
        model._encode_memory_in_output(frame_feats, feat_sizes, points, True, high_res, object_score, out)
        outputs["cond_frame_outputs" if t == 0 else "non_cond_frame_outputs"][t] = out
    return total / terms if terms else None  # a one-frame clip prompted by its own mask scores nothing


def _as_logits(mask, size, device) -> torch.Tensor:
    """A 0/1 frame mask as the low-resolution logits sam2 feeds back with new clicks (about +-10,
    as confident earlier predictions are)."""
    low = F.interpolate(torch.as_tensor(mask, device=device)[None, None], size=tuple(size), mode="bilinear",
                        align_corners=False)
    return 20.0 * (low - 0.5)


def _corrections(rng) -> int:
    """How many corrective clicks a clicked first frame gets: none half the time, else 1-3."""
    if rng is None or rng.random() < 0.5:
        return 0
    return int(rng.integers(1, 4))


def _error_click(high_res, target, rng):
    """A click uniformly from the error region: ((1, 1, 2) x,y coordinates, (1, 1) label) or None."""
    predicted = (high_res[0, 0] > 0).detach().cpu()
    truth = target.cpu() > 0.5
    rows, cols = torch.nonzero(predicted != truth, as_tuple=True)
    if rows.numel() == 0:
        return None
    pick = int(rng.integers(rows.numel()))
    row, col = int(rows[pick]), int(cols[pick])
    coords = torch.tensor([[[col, row]]], dtype=torch.float32)
    return coords, torch.tensor([[int(truth[row, col])]], dtype=torch.int32)


def lr_at(step: int, settings: TrainSettings) -> float:
    if step < settings.warmup:
        return settings.lr * (step + 1) / settings.warmup
    progress = (step - settings.warmup) / max(1, settings.steps - settings.warmup)
    return settings.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def train(model, next_clip, settings: TrainSettings, output: Path, validate=None, log=print, parameters=None,
          on_step=None):
    """Optimise ``parameters`` (default: all) on clips from ``next_clip(rng)``; resumes from
    ``output/last.pt`` if present and writes it every ``checkpoint_every`` steps;
    ``on_step(step, steps, loss)`` after every step."""
    output.mkdir(parents=True, exist_ok=True)
    params = [p for p in (parameters or model.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    step, rng = _resume(model, optimizer, output / "last.pt", settings.seed)
    with memoized_trunk(model, settings.memo_frames) as memo:
        step = _steps(model, next_clip, settings, optimizer, params, step, rng, output, validate, log, on_step)
    if memo is not None:
        log(f"image features: {memo.misses} frames encoded, {memo.hits} reused")
    return step


def _train_mode(model) -> None:
    """Training mode, except batch norms whose weights are frozen: they keep their statistics
    (LiteMedSAM's TinyViT has batch norms; in training mode they would use each batch's)."""
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and \
                not any(p.requires_grad for p in module.parameters()):
            module.eval()


def _steps(model, next_clip, settings, optimizer, params, step, rng, output, validate, log, on_step) -> int:
    _train_mode(model)
    started, recent = time.perf_counter(), []
    while step < settings.steps:
        clip = next_clip(rng)
        if clip is None:
            continue
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, settings)
        with settings.autocast() if settings.autocast else contextlib.nullcontext():
            loss = clip_loss(model, clip, rng, settings.object_weight)
        if loss is None:
            continue
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        step += 1
        recent.append(loss.item())
        if on_step is not None:
            on_step(step, settings.steps, recent[-1])
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            message = f"step {step}/{settings.steps} loss {np.mean(recent):.4f} {time.perf_counter() - started:.0f} s"
            if validate is not None:
                model.eval()
                message += f" validation Dice {validate(model):.3f}"
                _train_mode(model)
            log(message)
            recent = []
            save_torch_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                               "rng": rng.bit_generator.state}, output / "last.pt")
    model.eval()
    return step


def _resume(model, optimizer, path: Path, seed: int):
    rng = np.random.default_rng(seed)
    if not path.is_file():
        return 0, rng
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    rng.bit_generator.state = state["rng"]
    return int(state["step"]), rng
