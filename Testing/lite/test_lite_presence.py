"""lite's presence rule (core.lite_presence): a tracked slice keeps the object only where the
embedding under its mask is like the prompted slice's and unlike its own surroundings."""

import torch

from SegmentWithSAM2Lib.core.lite_presence import PROTOTYPES, PresenceRule, Prototype, masked_means, nearest_prototype

SIDE, CHANNELS = 16, 8


def scene(inside_vector, around_vector):
    """Features (HW, 1, C) holding ``inside_vector`` in rows/cols 4-11 and ``around_vector``
    elsewhere, and a mask (1, 1, 32, 32) of that square (at twice the resolution)."""
    grid = around_vector[:, None, None].repeat(1, SIDE, SIDE)
    grid[:, 4:12, 4:12] = inside_vector[:, None, None]
    mask = torch.full((1, 1, 2 * SIDE, 2 * SIDE), -5.0)
    mask[..., 8:24, 8:24] = 5.0
    return grid.flatten(1).T[:, None, :], mask


def unit(i):
    return torch.eye(CHANNELS)[i]


RULE = PresenceRule(likeness=0.6, contrast=0.8)
PRESENT = torch.tensor([[10.0]])


def prompted(vector, contrast=0.0):
    return Prototype(vector[None], torch.tensor([contrast]))


def test_the_means_are_taken_under_the_mask_and_in_a_ring_around_it():
    features, mask = scene(unit(0) * 3, unit(1) * 2)
    inside, around = masked_means(features, mask)
    assert torch.allclose(inside, unit(0) * 3) and torch.allclose(around, unit(1) * 2)


def test_the_object_stays_where_it_is_like_the_prompt_and_unlike_its_surroundings():
    features, mask = scene(unit(0), unit(1))
    assert torch.equal(RULE.score(features, mask, prompted(unit(0)), PRESENT), PRESENT)  # never raised above the head


def test_a_mask_unlike_the_prompted_object_is_absent():
    features, mask = scene(unit(2), unit(1))
    score = RULE.score(features, mask, prompted(unit(0)), PRESENT)
    assert abs(score.item() + 6.0) < 1e-5  # 10 x (likeness 0 - 0.6)


def test_a_mask_that_is_only_a_piece_of_its_surroundings_is_absent():
    """Like the prompt, but as like the tissue around it (cosine 0.95 > 0.8)."""
    like = unit(0) + 0.33 * unit(1)
    features, mask = scene(like, like + 0.05 * unit(3))
    score = RULE.score(features, mask, prompted(like), PRESENT)
    assert score.item() < 0


def test_an_object_as_faint_as_where_it_was_prompted_stays():
    """Contrast 0.85 (above the rule's 0.8): kept when the prompted slice's own was 0.9, not when it was 0.5."""
    features, mask = scene(unit(0) * 0.5268 + unit(1) * 0.85, unit(1))
    seen = Prototype.of(features, mask)
    assert abs(seen.contrast.item() - 0.85) < 1e-3
    assert torch.equal(RULE.score(features, mask, Prototype(seen.inside, torch.tensor([0.9])), PRESENT), PRESENT)
    assert RULE.score(features, mask, Prototype(seen.inside, torch.tensor([0.5])), PRESENT).item() < 0


def test_an_empty_mask_is_absent_and_the_heads_absent_stands():
    features, _ = scene(unit(0), unit(1))
    empty = torch.full((1, 1, 2 * SIDE, 2 * SIDE), -1024.0)
    assert RULE.score(features, empty, prompted(unit(0)), PRESENT).item() < 0
    features, mask = scene(unit(0), unit(1))
    head_absent = torch.tensor([[-2.5]])
    assert RULE.score(features, mask, prompted(unit(0)), head_absent).item() == -2.5


def test_the_nearest_prompted_slice_still_conditioning_gives_the_prototype():
    outputs = {"cond_frame_outputs": {4: {}, 20: {}}, "non_cond_frame_outputs": {},
               PROTOTYPES: {4: "at 4", 20: "at 20", 30: "at 30"}}  # 30: a prompt since removed
    assert nearest_prototype(outputs, 10) == "at 4"
    assert nearest_prototype(outputs, 13) == "at 20"
    assert nearest_prototype(outputs, 29) == "at 20"
    assert nearest_prototype({"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}, 3) is None
