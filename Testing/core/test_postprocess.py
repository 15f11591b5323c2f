"""Hole filling and island removal (in mm^2), and the merge of objects into one labelmap."""

import numpy as np
import pytest

from SegmentWithSAM2Lib.core.postprocess import PostProcess, clean_mask, merge_objects

HOLES_ONLY = dict(min_island_mm2=0)
ISLANDS_ONLY = dict(max_hole_mm2=0)


def square_with_hole(hole_rows, hole_cols, size=40):
    mask = np.zeros((size, size), bool)
    mask[2:size - 2, 2:size - 2] = True
    mask[hole_rows, hole_cols] = False
    return mask


@pytest.mark.parametrize("hole, pixel_area, max_hole, filled", [
    ((slice(10, 15), slice(10, 15)), 1.0, 25, True),  # 25 px = 25 mm^2: up to the limit is filled
    ((slice(10, 15), slice(10, 16)), 1.0, 25, False),  # 30 px
    ((slice(10, 15), slice(10, 15)), 0.5, 12.5, True),  # 25 px = 12.5 mm^2
    ((slice(10, 15), slice(10, 15)), 0.5, 12.0, False),
    ((slice(10, 20), slice(10, 20)), 0.25, 25, True),  # 100 px = 25 mm^2
    ((slice(10, 20), slice(10, 20)), 1.0, 25, False),  # 100 mm^2: a ring stays a ring
])
def test_holes_are_filled_up_to_an_area_in_mm2(hole, pixel_area, max_hole, filled):
    mask = square_with_hole(*hole)
    before = mask.copy()
    cleaned = clean_mask(mask, pixel_area, PostProcess(max_hole_mm2=max_hole, **HOLES_ONLY))
    np.testing.assert_array_equal(cleaned, square_with_hole(slice(0, 0), slice(0, 0)) if filled else before)
    np.testing.assert_array_equal(mask, before)  # the input is not modified


def test_each_hole_is_judged_on_its_own():
    mask = np.zeros((40, 40), bool)
    mask[2:12, 2:12] = True
    mask[5:7, 5:7] = False  # 4 px
    mask[15:38, 15:38] = True
    mask[20:30, 20:30] = False  # 100 px
    mask[33, 33] = False  # 1 px in the same ring
    cleaned = clean_mask(mask, 1.0, PostProcess(max_hole_mm2=25, **HOLES_ONLY))
    expected = mask.copy()
    expected[5:7, 5:7] = expected[33, 33] = True
    np.testing.assert_array_equal(cleaned, expected)


def test_background_open_to_the_edge_is_not_a_hole():
    mask = np.zeros((20, 20), bool)
    mask[:, 5:15] = True
    mask[0:4, 8:11] = False  # a notch open to the image border
    cleaned = clean_mask(mask, 1.0, PostProcess(max_hole_mm2=1000, **HOLES_ONLY))
    np.testing.assert_array_equal(cleaned, mask)


def blobs(*sizes_and_places):
    """One-row-high islands: (pixels, row, col0) each."""
    mask = np.zeros((30, 30), bool)
    for pixels, row, col in sizes_and_places:
        mask[row, col:col + pixels] = True
    return mask


@pytest.mark.parametrize("pixel_area, min_island, kept", [
    (1.0, 10, [False, True, True]),  # 9 px goes, 10 px (= the limit) stays
    (1.0, 11, [False, False, True]),
    (2.0, 18, [True, True, True]),  # 9 px = 18 mm^2
    (0.5, 10, [False, False, True]),  # 10 px = 5 mm^2
])
def test_small_islands_are_removed_by_area_in_mm2(pixel_area, min_island, kept):
    pieces = [(9, 2, 0), (10, 6, 0), (20, 10, 0)]
    cleaned = clean_mask(blobs(*pieces), pixel_area, PostProcess(min_island_mm2=min_island, **ISLANDS_ONLY))
    np.testing.assert_array_equal(cleaned, blobs(*[p for p, keep in zip(pieces, kept) if keep]))


def test_the_largest_piece_is_never_removed():
    mask = blobs((1, 5, 5), (4, 9, 9), (2, 20, 3))
    cleaned = clean_mask(mask, 1.0, PostProcess(min_island_mm2=100, **ISLANDS_ONLY))
    np.testing.assert_array_equal(cleaned, blobs((4, 9, 9)))
    single = blobs((3, 1, 1))
    np.testing.assert_array_equal(clean_mask(single, 1.0, PostProcess(min_island_mm2=100)), single)
    empty = np.zeros((8, 8), bool)
    assert not clean_mask(empty, 1.0, PostProcess()).any()


def test_holes_are_filled_before_islands_are_counted():
    mask = blobs((20, 25, 0))  # a 20-pixel line
    mask[2:7, 2:7] = True
    mask[3:6, 3:6] = False  # a ring of 16 px around a 9-px hole: 25 px, the largest piece, once filled
    cleaned = clean_mask(mask, 1.0, PostProcess(max_hole_mm2=9, min_island_mm2=22))
    expected = np.zeros_like(mask)
    expected[2:7, 2:7] = True
    np.testing.assert_array_equal(cleaned, expected)


def test_overlap_goes_to_the_higher_logit_and_background_stays_0():
    logits = np.full((2, 4, 4), -5.0)
    logits[0, :, :3] = 2.0
    logits[1, :, 1:] = 1.0
    logits[1, 0, 1] = 9.0
    logits[:, 3, :] = -1.0  # nobody here
    labels = merge_objects(logits, [3, 8], 1.0, None)
    expected = np.array([[3, 8, 3, 8], [3, 3, 3, 8], [3, 3, 3, 8], [0, 0, 0, 0]])
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(merge_objects(logits[::-1], [8, 3], 1.0, None), expected)  # order-free


def test_merge_cleans_each_object_first():
    logits = np.full((2, 20, 20), -3.0)
    logits[0, 2:12, 2:12] = 4.0
    logits[0, 6, 6] = -0.5  # a 1-px hole in object 0
    logits[0, 15, 15] = 4.0  # a 1-px island of object 0
    logits[1, 14:18, 14:18] = 0.5  # object 1 under that island, with a lower logit
    raw = merge_objects(logits, [1, 2], 1.0, None)
    assert raw[6, 6] == 0 and raw[15, 15] == 1
    cleaned = merge_objects(logits, [1, 2], 1.0, PostProcess(max_hole_mm2=4, min_island_mm2=4))
    assert cleaned[6, 6] == 1 and cleaned[15, 15] == 2  # hole filled; the island gone, object 1 shows
    assert (cleaned == 1).sum() == 100 and (cleaned == 2).sum() == 16 and (cleaned == 0).sum() == 400 - 116
    assert not merge_objects(np.full((1, 3, 3), -1.0), [1], 1.0, PostProcess()).any()
