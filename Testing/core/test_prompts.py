"""Prompt placement: structure, several objects and slices, and clear errors naming the prompt."""

import numpy as np
import pytest

from SegmentWithSAM2Lib.core.geometry import plan_slices
from SegmentWithSAM2Lib.core.inplane import InPlaneMap
from SegmentWithSAM2Lib.core.prompts import place_prompts
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error

SHAPE = (6, 20, 30)  # k, j, i
# IJK -> LPS identity: the axial frame is the array itself, so frame (x, y) = (i, j) * scale.
VOLUME = Volume.from_lps(np.zeros(SHAPE), np.eye(4))
PLAN = plan_slices(VOLUME, "axial")
INPLANE = InPlaneMap.fit(PLAN.slice_shape, PLAN.pixel_spacing, 60)  # 2x scale, centred vertically


def place(*objects, space="IJK"):
    return place_prompts({"space": space, "objects": list(objects)}, VOLUME, PLAN, INPLANE)


def frame_xy(i, j):
    row, col = INPLANE.slice_to_frame([j, i])[0]
    return col, row


def test_several_objects_and_slices():
    lesion = {"name": "lesion", "label": 4, "points": [{"position": [3, 4, 1]}, {"position": [5, 6, 1], "positive": False},
                                                       {"position": [7, 8, 4]}]}
    organ = {"name": "organ", "boxes": [{"corner1": [20, 15, 2], "corner2": [10, 5, 2]}]}
    placed = place(lesion, organ)
    assert [(o.name, o.label) for o in placed] == [("lesion", 4), ("organ", 2)]
    assert sorted(placed[0].slices) == [1, 4] and placed[0].slices[1].labels == [1, 0]
    np.testing.assert_allclose(placed[0].slices[1].points[0], frame_xy(3, 4))
    x0, y0, x1, y1 = placed[1].slices[2].box
    np.testing.assert_allclose([x0, y0], frame_xy(10, 5))
    np.testing.assert_allclose([x1, y1], frame_xy(20, 15))


def test_box_corners_within_half_a_voxel_of_one_slice_are_accepted():
    placed = place({"boxes": [{"corner1": [2, 2, 2.6], "corner2": [9, 9, 3.1]}]})
    assert list(placed[0].slices) == [3]


def test_mask_prompt_is_taken_on_its_slice():
    mask = np.zeros(SHAPE, dtype=bool)
    mask[3, 5:10, 6:12] = True
    placed = place({"masks": [{"slice": 3, "mask": mask}]})
    frame_mask = placed[0].slices[3].mask
    assert frame_mask.shape == (60, 60) and int(frame_mask.sum()) == 5 * 6 * 4


@pytest.mark.parametrize("objects, message", [
    ([{"name": "lesion", "points": [{"position": [31, 4, 1]}]}], "'lesion' point #1 at .* is outside the volume"),
    ([{"name": "lesion", "points": [{"position": [3, 4, -0.6]}]}], "outside the volume"),
    ([{"name": "lesion", "boxes": [{"corner1": [2, 2, 1], "corner2": [9, 9, 2]}]}],
     "'lesion' box #1: its corners lie on slices 1.00 and 2.00 .*within half a voxel"),
    ([{"name": "lesion", "boxes": [{"corner1": [2, 2, 1], "corner2": [2, 9, 1]}]}], "'lesion' box #1 has zero area"),
    ([{"name": "lesion", "points": [{"position": [3, 4, 1], "positive": False}]}], "only negative points"),
    ([{"name": "lesion"}], "'lesion' has no prompts"),
    ([], "no objects"),
    ([{"label": 0, "points": [{"position": [3, 4, 1]}]}], "label must be an integer"),
    ([{"label": 1, "points": [{"position": [3, 4, 1]}]}, {"label": 1, "points": [{"position": [3, 4, 2]}]}],
     "labels must be distinct"),
    ([{"points": [{"position": [3, 4]}]}], "three numbers"),
    ([{"points": [{"where": [3, 4, 1]}]}], "needs a 'position'"),
    ([{"points": {"position": [3, 4, 1]}}], "'points' must be a list"),
    ([{"boxes": [{"corner1": [2, 2, 1], "corner2": [9, 9, 1]}, {"corner1": [3, 3, 1], "corner2": [8, 8, 1]}]}],
     "already has a box"),
    ([{"masks": [{"slice": 1, "mask": np.zeros((2, 2, 2), bool)}]}], "must match the volume"),
    ([{"masks": [{"slice": 1, "mask": np.zeros(SHAPE, bool)}]}], "empty on slice 1"),
    ([{"points": [{"position": [3, 4, 1]}], "masks": [{"slice": 1, "mask": np.ones(SHAPE, bool)}]}],
     "already has other prompts"),
])
def test_bad_prompts_are_named(objects, message):
    with pytest.raises(SegmentWithSAM2Error, match=message):
        place(*objects)


def test_unknown_space_and_non_object_input():
    with pytest.raises(SegmentWithSAM2Error, match="'XYZ' is not one of RAS, LPS, IJK"):
        place({"points": [{"position": [1, 1, 1]}]}, space="XYZ")
    with pytest.raises(SegmentWithSAM2Error, match="must be an object"):
        place_prompts([1, 2], VOLUME, PLAN, INPLANE)
