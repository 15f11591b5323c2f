"""Bring a model's image features back to the scale of its positional encodings.

A model trained from scratch can grow its image features (the FPN neck's output) until the mask
decoder no longer sees where a click is: the keys of its first token-to-image attention are the raw
features plus a positional encoding of magnitude ~1, so features with an RMS of ~100 drown the
position, every prompt yields the same mask, and negative clicks do nothing (micro as first
shipped: features RMS 123, logits equal within 1e-5 for a click on either of two objects).

``rescale_image_features`` divides the neck's output by a factor and compensates it exactly where
sam2 consumes the features through a linear map (the decoder's high-resolution projections and the
memory encoder's input projection); the mask decoder and memory attention see the new scale and are
fine-tuned afterwards (``train --mode full --rescale-image-features RMS``).
"""

from __future__ import annotations

import torch


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
