"""Model surgery for fine-tuning: freeze modules, restart modules from fresh random weights, and
bring grown image features back to the scale of the positional encodings.

Modules are named as in sam2's model (``image_encoder``, ``sam_mask_decoder.transformer``, ...).
``reinit`` and ``rescale_image_features`` repaired the shipped micro model once (its recipe in
model_zoo/micro/recipe.json drives them); ``freeze`` is an ordinary fine-tuning option.

Why rescale: a model trained from scratch can grow its image features (the FPN neck's output)
until the mask decoder no longer sees where a click is: the keys of its first token-to-image
attention are the raw features plus a positional encoding of magnitude ~1, so features with an
RMS of ~100 drown the position, every prompt yields the same mask, and negative clicks do nothing
(micro as first shipped: features RMS 123, logits equal within 1e-5 for a click on either of two
objects).  ``rescale_image_features`` divides the neck's output by a factor and compensates it
exactly where sam2 consumes the features through a linear map (the decoder's high-resolution
projections and the memory encoder's input projection); the mask decoder and memory attention
see the new scale and are fine-tuned afterwards.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.model import build_predictor
from ..errors import SegmentWithSAM2Error


def named_modules(predictor, names) -> dict:
    """The named submodules, or an error naming the model's top-level ones."""
    names = [n.strip() for n in names if n.strip()]
    known = dict(predictor.named_modules())
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        top = ", ".join(name for name, _ in predictor.named_children())
        raise SegmentWithSAM2Error(f"no module {', '.join(unknown) or 'named'}; the model has {top} "
                                   "(and their submodules, e.g. sam_mask_decoder.transformer)")
    return {n: known[n] for n in names}


def frozen_parameters(predictor, names) -> list:
    """The weights of these modules and parameters (e.g. no_mem_embed); unknown names are refused."""
    names = [n.strip() for n in names if n.strip()]
    own = dict(predictor.named_parameters())
    modules = [n for n in names if n not in own]
    found = [own[n] for n in names if n in own]
    if modules or not found:
        found += [p for module in named_modules(predictor, modules).values() for p in module.parameters()]
    return found


def freeze(predictor, names) -> None:
    """Leave these modules' (or parameters') weights as they are."""
    for p in frozen_parameters(predictor, names):
        p.requires_grad_(False)


def reinit(predictor, names, config: Path, seed: int) -> None:
    """These modules from fresh weights: those a model built from ``config`` with ``seed`` has."""
    chosen = named_modules(predictor, names)
    fresh = dict(build_predictor(config, seed).named_modules())
    for name, module in chosen.items():
        module.load_state_dict(fresh[name].state_dict())


@torch.no_grad()
def image_feature_rms(predictor, frames: torch.Tensor) -> float:
    """RMS of the features the decoder gets on a prompted frame (the neck's lowest level)."""
    return float(predictor.forward_image(frames)["vision_features"].float().pow(2).mean().sqrt())


@torch.no_grad()
def rescale_image_features(predictor, frames: torch.Tensor, target_rms: float) -> float:
    """Scale the neck so its features have ``target_rms`` on ``frames``; returns the factor used."""
    factor = target_rms / image_feature_rms(predictor, frames)
    for conv in predictor.image_encoder.neck.convs:
        for p in conv.parameters():
            p.mul_(factor)  # lateral 1x1 convs: every output level is linear in them
    compensated = [predictor.memory_encoder.pix_feat_proj]
    if predictor.use_high_res_features_in_sam:
        compensated += [predictor.sam_mask_decoder.conv_s0, predictor.sam_mask_decoder.conv_s1]
    for layer in compensated:
        layer.weight.div_(factor)  # a linear map of the scaled features: exactly what it was
    return factor
