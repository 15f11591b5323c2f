"""The ``lite`` family: LiteMedSAM's encoder and decoder inside SAM2's memory architecture.

sam2's own ``SAM2VideoPredictor`` with four parts of ours, each named in the config
(``model_zoo/configs/lite_256.yaml``):

- ``LiteImageEncoder``: LiteMedSAM's TinyViT (one 256 x 64 x 64 level, stride 4 at 256 px) and a
  sine position encoding, in the dict sam2's backbone returns;
- ``PooledMemoryAttention``: sam2's memory attention run on 2x2-pooled tokens (64 x 64 = 4096
  query tokens cost about 3.7 s a slice on this CPU, 32 x 32 about 0.29 s); what it changes is
  upsampled and added to the full-resolution features, so a frame without memory keeps LiteMedSAM's
  embedding exactly;
- ``PooledMemoryEncoder``: sam2's memory encoder on the same pooled grid (RoPE needs memories and
  queries of one size);
- ``BoxPromptEncoder``: SAM's box encoding, as LiteMedSAM was trained — sam2 adds a padding point
  to every point set, SAM only to one without a box; that token alone moves LiteMedSAM's masks
  (Dice 0.946 on six slices, worst 0.77);
- ``SamTokenMaskDecoder``: SAM's decoder tokens, the object score read from the mask token;
- ``LitePredictor._track_step``: a slice without prompts is decoded from the box of the mask on
  the slice before (MedSAM's way through a volume), a correction from the earlier mask's box;
  whether the object is still there is also judged from the embedding (core.lite_presence).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sam2.modeling.memory_attention import MemoryAttention
from sam2.modeling.memory_encoder import MemoryEncoder
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam.prompt_encoder import PromptEncoder
from sam2.modeling.sam.transformer import TwoWayTransformer
from sam2.modeling.sam2_base import NO_OBJ_SCORE
from sam2.sam2_video_predictor import SAM2VideoPredictor
from torch import nn

from ..options import STOP_AFTER
from .lite_presence import PROTOTYPES, PresenceRule, Prototype, nearest_prototype
from .tinyvit import TinyViT

BOX_CORNERS = (2, 3)  # SAM's labels of a box's top-left and bottom-right corner points


class LiteNeck(nn.Module):
    """The position encoding of LiteMedSAM's one feature level; sam2 reads ``d_model``."""

    def __init__(self, position_encoding: nn.Module, d_model: int = 256):
        super().__init__()
        self.position_encoding, self.d_model = position_encoding, d_model


class LiteImageEncoder(nn.Module):
    def __init__(self, neck: LiteNeck):
        super().__init__()
        self.trunk, self.neck = TinyViT(), neck

    def forward(self, images: torch.Tensor) -> dict:
        features = self.trunk(images)
        position = self.neck.position_encoding(features).to(features.dtype)
        return {"vision_features": features, "vision_pos_enc": [position], "backbone_fpn": [features]}


def _pool(tokens: torch.Tensor, side: int, factor: int) -> torch.Tensor:
    """(side*side, B, C) tokens -> (side/factor)^2 tokens, averaged over factor x factor."""
    _, batch, channels = tokens.shape
    grid = tokens.permute(1, 2, 0).reshape(batch, channels, side, side)
    return F.avg_pool2d(grid, factor).flatten(2).permute(2, 0, 1)


class PooledMemoryAttention(MemoryAttention):
    """The change is scaled by a learned gate that starts at 0: an untrained memory leaves every
    frame's features LiteMedSAM's own, whose masks from a carried box are already good (Dice
    0.9 a slice on lung2 inside the tumour); training adds only what the memory is worth."""

    def __init__(self, *args, pool: int = 2, **kwargs):
        super().__init__(*args, **kwargs)
        self.pool = pool
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, curr, memory, curr_pos=None, memory_pos=None, num_obj_ptr_tokens: int = 0):
        if isinstance(curr, list):
            (curr,), (curr_pos,) = curr, curr_pos
        side = int(round(curr.shape[0] ** 0.5))
        pooled = _pool(curr, side, self.pool)
        out = super().forward(pooled, memory, _pool(curr_pos, side, self.pool), memory_pos, num_obj_ptr_tokens)
        change = (out - pooled).permute(1, 2, 0).reshape(curr.shape[1], curr.shape[2], side // self.pool, -1)
        change = F.interpolate(change, size=(side, side), mode="bilinear", align_corners=False)
        return curr + self.gate * change.flatten(2).permute(2, 0, 1)


class PooledMemoryEncoder(MemoryEncoder):
    """Memories on the pooled grid: the features pooled, the mask downsampled to that size (the
    config's mask downsampler has the matching total stride)."""

    def __init__(self, *args, pool: int = 2, **kwargs):
        super().__init__(*args, **kwargs)
        self.pool = pool

    def forward(self, pix_feat, masks, skip_mask_sigmoid=False):
        return super().forward(F.avg_pool2d(pix_feat, self.pool), masks, skip_mask_sigmoid)


class BoxPromptEncoder(PromptEncoder):
    def _embed_points(self, points, labels, pad):
        return super()._embed_points(points, labels, pad and not _has_box(labels))


class SamTokenMaskDecoder(MaskDecoder):
    """SAM's mask decoder with SAM's tokens only, so that LiteMedSAM's decoder is unchanged: sam2
    adds an object-score token to the two-way transformer, and even a zero token moves every
    LiteMedSAM mask (logits by up to 5.5, Dice 0.994 on a synthetic CT).  The object score is read
    from the output mask token instead (the one sam2's object pointer is made from)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        del self.obj_score_token
        self.pred_obj_scores = False  # predict_masks: SAM's tokens; the head is applied below

    def predict_masks(self, *args, **kwargs):
        masks, iou_pred, mask_tokens_out, _ = super().predict_masks(*args, **kwargs)
        return masks, iou_pred, mask_tokens_out, self.pred_obj_score_head(mask_tokens_out[:, 0])


class LitePredictor(SAM2VideoPredictor):
    """sam2's video predictor with SAM's box encoding and SAM's decoder tokens, on frames in
    [0, 1] as LiteMedSAM was trained (core.frames.frame_normalization)."""

    frame_normalization = (torch.zeros(3, 1, 1), torch.ones(3, 1, 1))

    def __init__(self, *args, presence_likeness: float | None = None, presence_contrast: float | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        rule = presence_likeness is not None and presence_contrast is not None
        self.presence = PresenceRule(presence_likeness, presence_contrast) if rule else None

    def _build_sam_heads(self):
        super()._build_sam_heads()
        size, dim = self.sam_image_embedding_size, self.sam_prompt_embed_dim
        self.sam_prompt_encoder = BoxPromptEncoder(embed_dim=dim, image_embedding_size=(size, size),
                                                   input_image_size=(self.image_size, self.image_size),
                                                   mask_in_chans=16)
        self.sam_mask_decoder = SamTokenMaskDecoder(
            num_multimask_outputs=3, transformer=TwoWayTransformer(depth=2, embedding_dim=dim, mlp_dim=2048, num_heads=8),
            transformer_dim=dim, iou_head_depth=3, iou_head_hidden_dim=256, use_high_res_features=False,
            iou_prediction_use_sigmoid=self.iou_prediction_use_sigmoid, pred_obj_scores=True,
            pred_obj_scores_mlp=self.pred_obj_scores_mlp, use_multimask_token_for_obj_ptr=False,
            **(self.sam_mask_decoder_extra_args or {}))

    def _track_step(self, frame_idx, is_init_cond_frame, feats, pos, feat_sizes, point_inputs, mask_inputs,
                    output_dict, num_frames, track_in_reverse, prev_sam_mask_logits):
        """sam2's step with boxes where LiteMedSAM needs them (its decoder was trained with a box
        on every slice, never with a mask input): a frame without prompts gets the box of the
        mask before it (MedSAM's way through a volume), and clicks that correct an earlier mask
        get that mask's box instead of its logits."""
        prompt = point_inputs
        if point_inputs is None and mask_inputs is None:
            prompt = self._carried_box(frame_idx, output_dict, track_in_reverse)
        elif prev_sam_mask_logits is not None and not _has_box(point_inputs["point_labels"]):
            box = box_prompt(prev_sam_mask_logits, self.image_size)
            if box is not None:
                prompt = {key: torch.cat([box[key], point_inputs[key].to(box[key].dtype)], dim=1) for key in box}
                prev_sam_mask_logits = None
        out, sam_outputs, *rest = super()._track_step(frame_idx, is_init_cond_frame, feats, pos, feat_sizes, prompt,
                                                      mask_inputs, output_dict, num_frames, track_in_reverse,
                                                      prev_sam_mask_logits)
        out["point_inputs"] = point_inputs  # what the user gave, as sam2 records it
        if self.presence is not None and not self.training:
            prompted = point_inputs is not None or mask_inputs is not None
            sam_outputs = self._judge_presence(frame_idx, feats[-1], output_dict, prompted, sam_outputs)
        return (out, sam_outputs, *rest)

    def _carried_box(self, frame_idx, output_dict, track_in_reverse):
        """The box of the mask on the nearest of the CARRY_BACK slices before this one that holds
        one: a slice judged without the object leaves the next one the last box it was seen in."""
        step = 1 if track_in_reverse else -1
        for back in range(1, CARRY_BACK + 1):
            index = frame_idx + step * back
            earlier = output_dict["cond_frame_outputs"].get(index) or output_dict["non_cond_frame_outputs"].get(index)
            if earlier is None:
                return None
            box = box_prompt(earlier["pred_masks"], self.image_size)
            if box is not None:
                return box
        return None

    def _judge_presence(self, frame_idx, features, output_dict, prompted, sam_outputs):
        """Keep a prompted slice's prototype; on a tracked slice, lower the object score where
        core.lite_presence says the object is gone, with sam2's no-object mask and pointer."""
        low_res, high_res, obj_ptr, head_score = (sam_outputs[i] for i in (3, 4, 5, 6))
        if prompted:
            output_dict.setdefault(PROTOTYPES, {})[frame_idx] = Prototype.of(features, low_res)
            return sam_outputs
        prototype = nearest_prototype(output_dict, frame_idx)
        if prototype is None:
            return sam_outputs
        score = self.presence.score(features, low_res, prototype, head_score)
        gone = (score <= 0) & (head_score > 0)  # (B, 1): newly judged absent
        if gone.any():
            low_res = torch.where(gone[:, :, None, None], torch.full_like(low_res, NO_OBJ_SCORE), low_res)
            high_res = torch.where(gone[:, :, None, None], torch.full_like(high_res, NO_OBJ_SCORE), high_res)
            no_object = self.no_obj_ptr if self.fixed_no_obj_ptr else obj_ptr + self.no_obj_ptr
            obj_ptr = torch.where(gone, no_object.to(obj_ptr.dtype), obj_ptr)
        return (*sam_outputs[:3], low_res, high_res, obj_ptr, score)


CARRY_WIDEN = 2  # frame pixels added on every side of a box from a mask (MedSAM widens by 3 slice pixels)
CARRY_BACK = STOP_AFTER  # slices looked back for a mask to carry: as many as auto-stop waits


def box_prompt(logits: torch.Tensor, image_size: int) -> dict | None:
    """The box (sam2's point inputs: corners labelled 2 and 3, in frame pixels) of each mask in
    low-resolution ``logits`` (B, 1, h, w), widened; None when a mask is empty."""
    masks = logits[:, 0] > 0
    if not masks.flatten(1).any(1).all():
        return None
    scale = image_size / masks.shape[-1]
    corners = []
    for mask in masks:
        rows, cols = torch.nonzero(mask, as_tuple=True)
        low = torch.stack([cols.min(), rows.min()]).float() * scale - CARRY_WIDEN
        high = (torch.stack([cols.max(), rows.max()]).float() + 1) * scale + CARRY_WIDEN
        corners.append(torch.stack([low, high]).clamp(0, image_size))
    labels = torch.tensor(BOX_CORNERS, dtype=torch.int32, device=masks.device).expand(len(corners), 2)
    return {"point_coords": torch.stack(corners), "point_labels": labels}


def _has_box(point_labels: torch.Tensor) -> bool:
    """Whether every prompt of the batch holds both corners of a box."""
    return all(bool((row == c).any()) for row in point_labels for c in BOX_CORNERS)


# LiteMedSAM's module prefixes -> this model's; sam2's MLP names its two layers layers.0/1
_PREFIXES = {"image_encoder.": "image_encoder.trunk.", "prompt_encoder.": "sam_prompt_encoder.",
             "mask_decoder.": "sam_mask_decoder."}
_MLP_NAMES = {".mlp.lin1.": ".mlp.layers.0.", ".mlp.lin2.": ".mlp.layers.1."}
PRESENT_LOGIT = 10.0  # the untrained object-score head's answer: always "the object is here"


def litemedsam_tensors(litemedsam: dict) -> dict:
    """LiteMedSAM's state dict under this model's names (encoder, prompt encoder, decoder)."""
    renamed = {}
    for key, tensor in litemedsam.items():
        prefix = next((p for p in _PREFIXES if key.startswith(p)), None)
        if prefix is None:
            raise ValueError(f"LiteMedSAM's {key} has no place in the lite model")
        name = _PREFIXES[prefix] + key[len(prefix):]
        for old, new in _MLP_NAMES.items():
            name = name.replace(old, new)
        renamed[name] = tensor
    return renamed


def transplanted_state(litemedsam: dict, fresh: dict) -> dict:
    """A full ``lite`` state dict to train from: LiteMedSAM's tensors under this model's names,
    every other one from ``fresh`` (a built model's initialisation), except two set so that a
    conditioning frame decodes exactly as LiteMedSAM until training says otherwise: no memory
    embedding (zeros: sam2 adds it to a frame without memory) and an object-score head that
    answers "present"."""
    state = dict(fresh)
    for name, tensor in litemedsam_tensors(litemedsam).items():
        if name not in fresh or fresh[name].shape != tensor.shape:
            raise ValueError(f"LiteMedSAM's tensor {name} has no place in the lite model")
        state[name] = tensor
    state["no_mem_embed"] = torch.zeros_like(fresh["no_mem_embed"])
    head = "sam_mask_decoder.pred_obj_score_head.layers"
    last = max(int(k[len(head) + 1:].split(".")[0]) for k in fresh if k.startswith(head + "."))
    state[f"{head}.{last}.weight"] = torch.zeros_like(fresh[f"{head}.{last}.weight"])
    state[f"{head}.{last}.bias"] = torch.full_like(fresh[f"{head}.{last}.bias"], PRESENT_LOGIT)
    return state


def trained_parts(state: dict, litemedsam: dict) -> dict:
    """What training changed or added: every tensor not bit-equal to LiteMedSAM's (what ships)."""
    base = litemedsam_tensors(litemedsam)
    return {k: v for k, v in state.items() if k not in base or not torch.equal(base[k], v)}


def lite_state(litemedsam: dict, parts: dict) -> dict:
    """The full state dict of a trained lite model: LiteMedSAM's tensors with ``parts`` over them."""
    return {**litemedsam_tensors(litemedsam), **parts}
