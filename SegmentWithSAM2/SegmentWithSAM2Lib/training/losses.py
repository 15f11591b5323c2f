"""SAM2's training losses: focal + dice on masks (the best of several candidate masks), IoU
prediction (MSE against the real IoU), and object presence (BCE on the object score)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

FOCAL_WEIGHT, DICE_WEIGHT, IOU_WEIGHT, OBJECT_WEIGHT = 20.0, 1.0, 1.0, 1.0


def focal(logits, target, alpha=0.25, gamma=2.0):
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma * (alpha * target + (1 - alpha) * (1 - target))
    return loss.flatten(-2).mean(-1)


def dice_loss(logits, target, eps=1.0):
    p = logits.sigmoid().flatten(-2)
    t = target.flatten(-2)
    return 1 - (2 * (p * t).sum(-1) + eps) / (p.sum(-1) + t.sum(-1) + eps)


def frame_loss(multimask_logits, ious, object_score, target, object_weight=OBJECT_WEIGHT) -> torch.Tensor:
    """``multimask_logits``: (1, M, S, S) at full resolution; ``target``: (S, S) float;
    ``object_weight``: the presence term's weight (SAM2's is 1)."""
    target = target.expand_as(multimask_logits)
    present = target.flatten(-3).amax(-1) > 0
    mask_losses = FOCAL_WEIGHT * focal(multimask_logits, target) + DICE_WEIGHT * dice_loss(multimask_logits, target)
    best = mask_losses.argmin(-1, keepdim=True)
    with torch.no_grad():
        predicted = (multimask_logits > 0).float()
        inter = (predicted * target).flatten(-2).sum(-1)
        union = ((predicted + target) > 0).float().flatten(-2).sum(-1).clamp(min=1)
    iou_loss = F.mse_loss(ious, inter / union)
    object_loss = F.binary_cross_entropy_with_logits(object_score.flatten(), present.float().flatten())
    mask_loss = mask_losses.gather(-1, best).mean() if present.any() else mask_losses.new_zeros(())
    return mask_loss + IOU_WEIGHT * iou_loss * present.float().mean() + object_weight * object_loss
