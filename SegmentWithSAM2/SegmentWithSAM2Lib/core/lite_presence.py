"""Whether a tracked slice still shows the prompted object, judged from LiteMedSAM's features.

lite's object-score head reads the decoder's mask token, which says "something is segmented in
this box", not "this is the object": past an object's end the carried box still holds tissue, and
the head keeps scoring it present (lung2: 0.3-1.9 on 14 slices past the tumour). Two things the
image embedding says, measured on the training atlases and synthetic volumes (model_zoo/lite):

- likeness: the cosine between the mean embedding under this slice's mask and under the mask of
  the prompted slice nearest it (the object's prototype, kept when that slice is decoded);
- contrast: the cosine between the mean embedding under the mask and in a ring around it; a mask
  that is only a piece of its surroundings is as like them as they are like themselves.

A slice keeps the object when likeness >= ``likeness`` and its contrast is no higher than
``contrast`` or than the prompted slice's own (an object as faint as where the user marked it
stays, e.g. the phantom's organ at 0.85); otherwise its
score becomes negative (where it keeps the object, and where the head already says "absent",
the head's score stands), and its mask and pointer
become sam2's no-object ones, as the head's own "absent" would make them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

PROTOTYPES = "lite_prototypes"  # key of an object's output dict: prompted slice -> Prototype
RING = 7  # side of the dilation (64-px grid) whose ring around a mask is its surroundings
ABSENT_SCALE = 10.0  # logit per unit of the worse margin: the score's sign is the decision


@dataclass(frozen=True)
class Prototype:
    """What a prompted slice shows of its object: the mean embedding (B, C) under its mask and
    that mean's cosine (B,) to its surroundings."""
    inside: torch.Tensor
    contrast: torch.Tensor

    @classmethod
    def of(cls, features, masks) -> "Prototype":
        inside, around = masked_means(features, masks)
        return cls(inside, F.cosine_similarity(inside, around, dim=1))


@dataclass(frozen=True)
class PresenceRule:
    likeness: float  # lowest cosine to the prompted slice's prototype that still is the object
    contrast: float  # highest cosine to the mask's surroundings that is an object (unless the prompt's is higher)

    def score(self, features, masks, prototype: Prototype, head_score):
        """The object score (B, 1) of a tracked slice: the head's, lowered where the rule says absent."""
        seen = Prototype.of(features, masks)
        likeness = F.cosine_similarity(seen.inside, prototype.inside, dim=1)
        allowed = prototype.contrast.clamp(min=self.contrast)
        margin = torch.minimum(likeness - self.likeness, allowed - seen.contrast)
        shown = (masks > 0).flatten(1).any(1)
        margin = torch.where(shown, margin, torch.full_like(margin, -1.0))
        absent = torch.minimum(head_score.float(), ABSENT_SCALE * margin[:, None]).to(head_score.dtype)
        return torch.where(margin[:, None] > 0, head_score, absent)


def masked_means(features: torch.Tensor, masks: torch.Tensor):
    """Mean embedding (B, C) under each mask and in a ring around it; ``features`` (HW, B, C) as
    sam2 hands them to a step, ``masks`` low-resolution logits (B, 1, h, w)."""
    side = int(round(features.shape[0] ** 0.5))
    grid = features.permute(1, 2, 0).reshape(features.shape[1], features.shape[2], side, side).float()
    inside = (F.interpolate(masks.float(), size=(side, side), mode="bilinear", align_corners=False) > 0).float()
    ring = F.max_pool2d(inside, RING, 1, RING // 2) - inside
    mean = lambda weights: (grid * weights).sum((2, 3)) / weights.sum((2, 3)).clamp(min=1)  # noqa: E731
    return mean(inside), mean(ring)


def nearest_prototype(output_dict: dict, frame_idx: int):
    """The prototype of the prompted slice nearest ``frame_idx`` (None before any); only slices
    still conditioning count (a reset state keeps no stale prototype)."""
    kept = output_dict.get(PROTOTYPES) or {}
    prototypes = {k: v for k, v in kept.items() if k in output_dict["cond_frame_outputs"]}
    if not prototypes:
        return None
    return prototypes[min(prototypes, key=lambda k: (abs(k - frame_idx), k))]
