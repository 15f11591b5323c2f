"""How lite tracks a slice without prompts: LiteMedSAM's decoder gets the box of the mask on the
slice before (MedSAM's own way through a volume), on features the memory changes only as much as
its learned gate allows — an untrained memory (gate 0) not at all."""

import contextlib

import pytest
import torch

from SegmentWithSAM2Lib.core.lite import CARRY_WIDEN, PooledMemoryAttention, box_prompt, transplanted_state
from SegmentWithSAM2Lib.core.model import build_predictor
from SegmentWithSAM2Lib.io import lite as lite_io
from SegmentWithSAM2Lib.io.model_zoo import resolve_config
from SegmentWithSAM2Lib.synthetic import demo_ct
from support import box_of, litemedsam_input


@pytest.fixture(scope="module")
def untrained():
    predictor = build_predictor(resolve_config("lite_256.yaml"))
    predictor.load_state_dict(transplanted_state(lite_io.read_lite_state(), predictor.state_dict()), strict=True)
    return predictor.eval()


def test_the_box_of_a_mask_is_in_frame_pixels_widened():
    low_res = torch.full((1, 1, 64, 64), -5.0)
    low_res[0, 0, 10:21, 30:41] = 3.0  # rows 10-20, columns 30-40 of a 64-px low-resolution mask
    box = box_prompt(low_res, image_size=256)
    assert box["point_coords"][0].tolist() == [[30 * 4 - CARRY_WIDEN, 10 * 4 - CARRY_WIDEN],
                                               [41 * 4 + CARRY_WIDEN, 21 * 4 + CARRY_WIDEN]]
    assert box["point_labels"].tolist() == [[2, 3]]  # SAM's box corner labels


def test_no_box_comes_from_an_empty_mask_and_a_box_stays_in_the_frame():
    empty = torch.full((1, 1, 64, 64), -1024.0)  # sam2's answer on a slice it scores as without the object
    assert box_prompt(empty, 256) is None
    edge = empty.clone()
    edge[0, 0, 0:5, 60:64] = 1.0
    assert box_prompt(edge, 256)["point_coords"][0].tolist() == [[238.0, 0.0], [256.0, 22.0]]


def test_an_untrained_memory_leaves_the_features_exactly_as_they_are():
    attention = PooledMemoryAttention(d_model=8, pos_enc_at_input=True, layer=torch.nn.Identity(), num_layers=0)
    assert attention.gate.item() == 0.0 and attention.gate.requires_grad
    curr, pos = torch.randn(16 * 16, 1, 8), torch.randn(16 * 16, 1, 8)
    out = attention(curr, torch.randn(20, 1, 8), pos, torch.randn(20, 1, 8))
    assert torch.equal(out, curr)
    attention.gate.data.fill_(0.5)
    assert not torch.allclose(attention(curr, torch.randn(20, 1, 8), pos, torch.randn(20, 1, 8)), curr)


@contextlib.contextmanager
def presence(predictor, rule):
    """The predictor with its presence rule (core.lite_presence) set to ``rule`` for a while."""
    kept, predictor.presence = predictor.presence, rule
    try:
        yield predictor
    finally:
        predictor.presence = kept


def test_a_slice_without_prompts_is_decoded_from_the_box_of_the_mask_before_it(untrained):
    """Slice 21 tracked after a box on slice 20 gives exactly what slice 21 gives when prompted
    with the carried box directly: the box is what the decoder saw, and the untrained memory
    changed nothing.  (The presence rule is off: the phantom's organ on slice 21 stands out from
    its surroundings a little less than on slice 20, cosine 0.844 against 0.820, and the rule would
    score it absent.)"""
    volume, truth = demo_ct()
    frames = torch.cat([litemedsam_input(volume.array[i]) for i in (20, 21)])
    scale = 256 / volume.array.shape[1]
    with torch.inference_mode(), presence(untrained, None):
        _, feats, pos, sizes = untrained._prepare_backbone_features(untrained.forward_image(frames))
        one = lambda x, t: [f[:, t:t + 1] for f in x]  # noqa: E731  (frame t of the batch)
        outputs = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        box = {"point_coords": torch.tensor([box_of(truth[20], scale)]).view(1, 2, 2),
               "point_labels": torch.tensor([[2, 3]])}
        outputs["cond_frame_outputs"][0] = untrained.track_step(0, True, one(feats, 0), one(pos, 0), sizes, box, None,
                                                                outputs, 2, False, True)
        tracked = untrained.track_step(1, False, one(feats, 1), one(pos, 1), sizes, None, None, outputs, 2, False, True)
        carried = box_prompt(outputs["cond_frame_outputs"][0]["pred_masks"], 256)
        direct = untrained.track_step(1, True, one(feats, 1), one(pos, 1), sizes, carried, None,
                                      {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}, 1, False, False)
    assert tracked["point_inputs"] is None  # the carried box is not recorded as a user's prompt
    assert (direct["pred_masks"] > 0).sum() > 200
    assert torch.equal(tracked["pred_masks"], direct["pred_masks"])


def test_clicks_correcting_an_earlier_mask_go_in_with_that_masks_box_not_its_logits(untrained):
    """A correction (clicks on a slice with an earlier mask): LiteMedSAM was never trained with a
    mask input, so the earlier mask's box goes in with the clicks, and its logits do not."""
    volume, truth = demo_ct()
    with torch.inference_mode():
        _, feats, pos, sizes = untrained._prepare_backbone_features(untrained.forward_image(
            litemedsam_input(volume.array[22])))
        earlier = torch.full((1, 1, 256, 256), -8.0)
        earlier[0, 0, 90:170, 80:200] = 8.0
        click = {"point_coords": torch.tensor([[[100.0, 120.0]]]), "point_labels": torch.tensor([[0]], dtype=torch.int32)}
        step = lambda prompt, previous: untrained.track_step(  # noqa: E731
            0, True, feats, pos, sizes, prompt, None, {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}, 1,
            False, False, previous)
        corrected = step(click, earlier)
        box = box_prompt(earlier, 256)
        with_box = {k: torch.cat([box[k], click[k]], 1) for k in box}
        expected = step(with_box, None)
    assert corrected["point_inputs"] is click
    assert box["point_coords"][0].tolist() == [[78.0, 88.0], [202.0, 172.0]]
    assert torch.equal(corrected["pred_masks"], expected["pred_masks"])


def test_a_tracked_slice_unlike_the_prompted_object_gets_sam2s_no_object_mask_and_pointer(untrained):
    """A box on slice 24 of the organ (slices 15-32), then slice 42 tracked after it: the carried
    box holds only tissue, which the untrained head (always "present") would segment; the presence
    rule (core.lite_presence) scores it absent, and the mask and pointer become sam2's no-object ones."""
    from sam2.modeling.sam2_base import NO_OBJ_SCORE

    volume, truth = demo_ct()
    frames = torch.cat([litemedsam_input(volume.array[i]) for i in (24, 42)])
    scale = 256 / volume.array.shape[1]
    box = {"point_coords": torch.tensor([box_of(truth[24], scale)]).view(1, 2, 2), "point_labels": torch.tensor([[2, 3]])}

    def track(rule):
        with torch.inference_mode(), presence(untrained, rule):
            _, feats, pos, sizes = untrained._prepare_backbone_features(untrained.forward_image(frames))
            one = lambda x, t: [f[:, t:t + 1] for f in x]  # noqa: E731
            outputs = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
            outputs["cond_frame_outputs"][0] = untrained.track_step(0, True, one(feats, 0), one(pos, 0), sizes,
                                                                    box, None, outputs, 2, False, True)
            return untrained.track_step(1, False, one(feats, 1), one(pos, 1), sizes, None, None, outputs, 2,
                                        False, True)

    rule = untrained.presence
    assert rule is not None  # lite_256.yaml sets it
    without = track(None)
    assert without["object_score_logits"].item() > 0 and (without["pred_masks"] > 0).any()
    judged = track(rule)
    assert judged["object_score_logits"].item() < 0
    assert (judged["pred_masks"] == NO_OBJ_SCORE).all()
    assert torch.equal(judged["obj_ptr"], untrained.no_obj_ptr.expand_as(judged["obj_ptr"]))
