"""Prompt placement: structure, several objects and slices, boxes, masks, and clear errors naming the prompt."""

import numpy as np
import pytest

from SegmentWithSAM2Lib.core.geometry import plan_slices
from SegmentWithSAM2Lib.core.inplane import InPlaneMap
from SegmentWithSAM2Lib.core.prompts import PALETTE, place_prompts
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error

SHAPE = (6, 20, 30)  # k, j, i
# IJK -> LPS identity: the axial view is the array itself (i -> columns, j -> rows, k -> slices).
VOLUME = Volume.from_lps(np.zeros(SHAPE), np.eye(4))
PLAN = plan_slices(VOLUME, "axial")
INPLANE = InPlaneMap.fit(PLAN.slice_shape, PLAN.pixel_spacing, 60)  # 2x scale, centred vertically


def place(*objects, space="IJK"):
    return place_prompts({"space": space, "objects": list(objects)}, VOLUME, PLAN, INPLANE)


def frame_xy(i, j):
    row, col = INPLANE.slice_to_frame([j, i])[0]
    return col, row


def point(i, j, k, positive=True):
    return {"position": [i, j, k], "positive": positive}


def test_the_test_grid_is_what_the_tests_assume():
    assert (PLAN.slice_axis, PLAN.row_axis, PLAN.col_axis, PLAN.flip_rows, PLAN.flip_cols) == (2, 1, 0, False, False)
    assert INPLANE.footprint == (40, 60) and INPLANE.offset == (10, 0)
    np.testing.assert_allclose(frame_xy(3, 4), (6.5, 18.5))


def test_several_objects_and_slices():
    lesion = {"name": "lesion", "label": 4, "color": [1, 0, 0],
              "points": [point(3, 4, 1), point(5, 6, 1, positive=False), point(7, 8, 4)]}
    organ = {"boxes": [{"corner1": [24, 15, 2], "corner2": [10, 3, 2]}], "points": [point(12, 9, 2, False)]}
    third = {"points": [point(1, 1, 0)]}
    placed = place(lesion, organ, third)
    assert [(o.name, o.label) for o in placed] == [("lesion", 4), ("object 2", 2), ("object 3", 3)]
    assert placed[0].color == (1.0, 0.0, 0.0) and placed[1].color == PALETTE[1] and placed[2].color == PALETTE[2]
    assert sorted(placed[0].slices) == [1, 4] and list(placed[1].slices) == [2] and list(placed[2].slices) == [0]
    on_1 = placed[0].slices[1]
    assert on_1.labels == [1, 0] and on_1.box is None and on_1.mask is None
    np.testing.assert_allclose(on_1.points, [frame_xy(3, 4), frame_xy(5, 6)])
    np.testing.assert_allclose(placed[0].slices[4].points, [frame_xy(7, 8)])
    organ_slice = placed[1].slices[2]
    assert organ_slice.labels == [0] and organ_slice.has_positive  # the box makes it positive
    np.testing.assert_allclose(organ_slice.box, frame_xy(10, 3) + frame_xy(24, 15))  # (x0, y0, x1, y1)


@pytest.mark.parametrize("corner1, corner2", [([10, 3, 2], [24, 15, 2]), ([24, 15, 2], [10, 3, 2]),
                                              ([10, 15, 2], [24, 3, 2]), ([24, 3, 2], [10, 15, 2])])
def test_box_corners_in_any_order(corner1, corner2):
    box = place({"boxes": [{"corner1": corner1, "corner2": corner2}]})[0].slices[2].box
    x0, y0, x1, y1 = box
    assert x0 < x1 and y0 < y1
    np.testing.assert_allclose(box, frame_xy(10, 3) + frame_xy(24, 15))


def test_boxes_in_ras_and_lps_land_like_ijk():
    ijk = place({"boxes": [{"corner1": [4, 3, 3], "corner2": [25, 17, 3]}]})[0].slices[3].box
    for space, sign in (("LPS", [1, 1, 1]), ("RAS", [-1, -1, 1])):
        corners = {"corner1": list(np.multiply([4, 3, 3], sign)), "corner2": list(np.multiply([25, 17, 3], sign))}
        placed = place({"boxes": [corners]}, space=space)[0]
        assert list(placed.slices) == [3]
        np.testing.assert_allclose(placed.slices[3].box, ijk)


@pytest.mark.parametrize("k1, k2, slice_index", [(2.6, 3.1, 3), (3.0, 3.5, 3), (2.5, 2.0, 2)])
def test_box_corners_within_half_a_voxel_of_one_slice_are_accepted(k1, k2, slice_index):
    placed = place({"boxes": [{"corner1": [2, 2, k1], "corner2": [9, 9, k2]}]})
    assert list(placed[0].slices) == [slice_index]


@pytest.mark.parametrize("k, slice_index", [(-0.5, 0), (-0.2, 0), (0.49, 0), (0.51, 1), (5.2, 5), (5.5, 5)])
def test_points_go_to_the_nearest_slice_even_on_the_volume_faces(k, slice_index):
    placed = place({"points": [point(3, 4, k)], "boxes": [{"corner1": [2, 2, k], "corner2": [9, 9, k]}]})
    assert list(placed[0].slices) == [slice_index]


def test_mask_prompt_is_taken_on_its_slice():
    mask = np.zeros(SHAPE, dtype=bool)
    mask[3, 5:10, 6:12] = True  # rows 5..9, cols 6..11 on slice 3
    placed = place({"masks": [{"slice": 3, "mask": mask}]}, {"points": [point(3, 4, 3)], "label": 7})
    frame_mask = placed[0].slices[3].mask
    assert list(placed[0].slices) == [3] and frame_mask.shape == (60, 60)
    expected = np.zeros((60, 60), dtype=bool)
    expected[10 + 10:10 + 20, 12:24] = True  # 2x scale, 10 rows of top border
    np.testing.assert_array_equal(frame_mask.numpy(), expected)


def test_a_mask_and_points_may_share_an_object_on_different_slices():
    mask = np.zeros(SHAPE, dtype=bool)
    mask[1, 5:10, 6:12] = True
    placed = place({"points": [point(3, 4, 4, positive=False)], "masks": [{"slice": 1, "mask": mask.astype(np.uint8)}]})
    assert sorted(placed[0].slices) == [1, 4] and placed[0].slices[4].labels == [0]


FULL = np.ones(SHAPE, bool)


@pytest.mark.parametrize("objects, message", [
    ([{"name": "lesion", "points": [point(31, 4, 1)]}],
     r"'lesion' point #1 at \[31.0, 4.0, 1.0\] is outside the volume"),
    ([{"points": [point(3, 4, -0.6)]}], r"'object 1' point #1 .* is outside the volume .*size \[30, 20, 6\]"),
    ([{"points": [point(3, 20, 1)]}], "outside the volume"),
    ([{"points": [point(3, 4, float("nan"))]}], "outside the volume"),
    ([{"name": "lesion", "points": [point(3, 4, 1)],
       "boxes": [{"corner1": [2, 2, 2], "corner2": [9, 9, 2]}, {"corner1": [2, 2, 1], "corner2": [9, 9, 2]}]}],
     r"'lesion' box #2: its corners lie on slices 1.00 and 2.00 along the axial axis.*within half a voxel"),
    ([{"name": "lesion", "boxes": [{"corner1": [2, 2, 1], "corner2": [9, 9, 1.6]}]}], "'lesion' box #1: its corners"),
    ([{"name": "lesion", "boxes": [{"corner1": [2, 2, 1], "corner2": [2, 9, 1]}]}], "'lesion' box #1 has zero area"),
    ([{"boxes": [{"corner1": [2, 3, 1], "corner2": [9, 3, 1]}]}], "has zero area"),
    ([{"name": "lesion", "points": [point(3, 4, 1, False), point(3, 4, 2, False)]}],
     "object 'lesion' has only negative points"),
    ([{"name": "lesion"}], "object 'lesion' has no prompts"),
    ([{"name": "lesion", "points": [], "boxes": []}], "has no prompts"),
    ([], "no objects"),
    ([{"label": 0, "points": [point(3, 4, 1)]}], "object #1: label must be an integer 1..65535, got 0"),
    ([{"points": [point(3, 4, 1)]}, {"label": 70000, "points": [point(3, 4, 1)]}], "object #2: label must be"),
    ([{"label": "2", "points": [point(3, 4, 1)]}], "label must be an integer"),
    ([{"label": True, "points": [point(3, 4, 1)]}], "label must be an integer"),
    ([{"label": 1, "points": [point(3, 4, 1)]}, {"label": 1, "points": [point(3, 4, 2)]}],
     r"object labels must be distinct, got \[1, 1\]"),
    ([{"points": [point(3, 4, 1)]}, {"label": 1, "points": [point(3, 4, 2)]}], "must be distinct"),
    ([{"points": [{"position": [3, 4]}]}], "a position must be three numbers"),
    ([{"points": [{"where": [3, 4, 1]}]}], "point #1 needs a 'position'"),
    ([{"points": {"position": [3, 4, 1]}}], "'points' must be a list"),
    ([{"boxes": [{"corner1": [2, 2, 1]}]}], "box #1 needs 'corner1' and 'corner2'"),
    ([{"boxes": [{"corner1": [2, 2, 1], "corner2": [9, 9, 1]}, {"corner1": [3, 3, 1], "corner2": [8, 8, 1]}]}],
     "box #2: slice 1 already has a box"),
    ([{"masks": [{"slice": 1, "mask": np.zeros((2, 2, 2), bool)}]}],
     r"mask #1 has shape \(2, 2, 2\); it must match the volume \(6, 20, 30\)"),
    ([{"masks": [{"slice": 1, "mask": np.zeros(SHAPE[::-1], bool)}]}], "must match the volume"),
    ([{"masks": [{"slice": 1, "mask": np.zeros(SHAPE, bool)}]}], "mask #1 is empty on slice 1"),
    ([{"masks": [{"slice": 6, "mask": FULL}]}], r"slice 6 is outside 0..5"),
    ([{"masks": [{"mask": FULL}]}], "needs 'mask'"),
    ([{"points": [point(3, 4, 1)], "masks": [{"slice": 1, "mask": FULL}]}], "slice 1 already has other prompts"),
    ([{"boxes": [{"corner1": [2, 2, 1], "corner2": [9, 9, 1]}], "masks": [{"slice": 1, "mask": FULL}]}],
     "already has other prompts"),
    (["lesion"], "object #1 must be a JSON object"),
])
def test_bad_prompts_are_named(objects, message):
    with pytest.raises(SegmentWithSAM2Error, match=message):
        place(*objects)


def test_unknown_space_and_non_object_input():
    with pytest.raises(SegmentWithSAM2Error, match=r"unknown prompt space 'XYZ' \(use one of RAS, LPS, IJK\)"):
        place({"points": [point(1, 1, 1)]}, space="XYZ")
    with pytest.raises(SegmentWithSAM2Error, match="must be an object with 'space' and 'objects'"):
        place_prompts([1, 2], VOLUME, PLAN, INPLANE)
    with pytest.raises(SegmentWithSAM2Error, match="no objects"):
        place_prompts({"space": "RAS"}, VOLUME, PLAN, INPLANE)
    lower = place_prompts({"space": "ijk", "objects": [{"points": [point(3, 4, 1)]}]}, VOLUME, PLAN, INPLANE)
    assert list(lower[0].slices) == [1]  # the space name is case-insensitive


def test_space_defaults_to_ras():
    ras = [-3.0, -4.0, 1.0]  # voxel (3, 4, 1) of the LPS-identity grid
    placed = place_prompts({"objects": [{"points": [{"position": ras}]}]}, VOLUME, PLAN, INPLANE)
    np.testing.assert_allclose(placed[0].slices[1].points, [frame_xy(3, 4)])
