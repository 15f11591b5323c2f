"""Hole filling, island removal and the merge of objects into one labelmap."""

import numpy as np

from SegmentWithSAM2Lib.core.postprocess import PostProcess, clean_mask, merge_objects


def test_small_holes_filled_large_ones_kept():
    mask = np.zeros((40, 40), bool)
    mask[2:12, 2:12] = True
    mask[5:7, 5:7] = False  # a 4-pixel hole
    mask[15:38, 15:38] = True
    mask[20:30, 20:30] = False  # a 100-pixel hole: a ring stays a ring
    cleaned = clean_mask(mask, pixel_area_mm2=1.0, options=PostProcess(max_hole_mm2=25, min_island_mm2=0))
    assert cleaned[5:7, 5:7].all() and not cleaned[20:30, 20:30].any()
    # with 0.25 mm^2 pixels the 4-pixel hole is 1 mm^2 and the big one 25 mm^2: both filled
    assert clean_mask(mask, 0.25, PostProcess(max_hole_mm2=25, min_island_mm2=0))[20:30, 20:30].all()


def test_small_islands_removed_but_never_the_largest_piece():
    mask = np.zeros((30, 30), bool)
    mask[2:4, 2:4] = True  # 4 pixels
    mask[10:20, 10:20] = True  # 100 pixels
    cleaned = clean_mask(mask, 1.0, PostProcess(max_hole_mm2=0, min_island_mm2=10))
    assert not cleaned[2:4, 2:4].any() and cleaned[10:20, 10:20].all()
    tiny = np.zeros((30, 30), bool)
    tiny[5, 5] = tiny[9:11, 9:11] = True
    kept = clean_mask(tiny, 1.0, PostProcess(max_hole_mm2=0, min_island_mm2=10))
    assert kept[9:11, 9:11].all() and not kept[5, 5]


def test_overlap_goes_to_the_higher_logit():
    logits = np.full((2, 4, 4), -5.0)
    logits[0, :, :3] = 2.0
    logits[1, :, 1:] = 1.0
    logits[1, 0, 1] = 9.0
    labels = merge_objects(logits, [3, 8], 1.0, None)
    expected = np.array([[3, 8, 3, 8]] + [[3, 3, 3, 8]] * 3)
    np.testing.assert_array_equal(labels, expected)
    assert (merge_objects(np.full((1, 3, 3), -1.0), [1], 1.0, PostProcess()) == 0).all()
