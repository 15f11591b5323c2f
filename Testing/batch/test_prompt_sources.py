"""Prompts from a detector's box CSV and from labelmaps (LesionLocator's mask-to-prompt idea):
one object per label, a box (or the mask) on the largest slice of each connected component."""

from __future__ import annotations

import numpy as np
import pytest

from SegmentWithSAM2Lib.batch.prompt_sources import prompts_from_boxes, prompts_from_labels, read_box_rows
from SegmentWithSAM2Lib.core.prompts import check_prompts
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error

SHAPE = (10, 30, 30)


def volumes(labels):
    image = Volume(np.random.default_rng(0).normal(size=SHAPE).astype(np.float32), np.diag([1.0, 1.0, 2.0, 1.0]))
    return Volume(labels, image.ijk_to_ras), image


def two_blobs():
    labels = np.zeros(SHAPE, np.uint8)
    labels[2:5, 3:8, 4:10] = 1  # component A: 3 slices
    labels[3, 4:9, 4:11] = 1  # slice 3 of A is the widest
    labels[6:9, 20:25, 20:23] = 1  # component B, apart from A
    labels[7:9, 10:20, 12:15] = 2
    return labels


def test_each_component_gets_a_box_on_its_largest_slice():
    labels, image = volumes(two_blobs())
    prompts = prompts_from_labels(labels, image, "box", axis="axial")
    one, two = prompts["objects"]
    assert (one["label"], two["label"]) == (1, 2)
    assert one["boxes"][0] == {"corner1": [4, 3, 3], "corner2": [10, 8, 3]}  # A on slice 3
    assert one["boxes"][1]["corner1"][2] in (6, 7, 8) and one["boxes"][1]["corner1"][:2] == [20, 20]
    check_prompts(image, prompts, "axial")  # a prompt the engine takes


def test_mask_prompts_hold_the_component_on_that_slice_only():
    labels, image = volumes(two_blobs())
    prompts = prompts_from_labels(labels, image, "mask", values={2}, axis="axial")
    (obj,) = prompts["objects"]
    (mask,) = obj["masks"]
    expected = np.zeros(SHAPE, bool)
    expected[mask["slice"]] = two_blobs()[mask["slice"]] == 2
    assert mask["slice"] in (7, 8) and np.array_equal(mask["mask"], expected)


def test_a_one_voxel_wide_component_gets_a_box_with_an_area():
    array = np.zeros(SHAPE, np.uint8)
    array[4, 10:15, 7] = 3
    labels, image = volumes(array)
    box = prompts_from_labels(labels, image, "box", axis="axial")["objects"][0]["boxes"][0]
    assert box == {"corner1": [6.5, 10, 4], "corner2": [7.5, 14, 4]}
    check_prompts(image, {"space": "IJK", "objects": [{"boxes": [box]}]}, "axial")


def test_label_values_missing_from_the_labelmap_are_refused():
    labels, image = volumes(two_blobs())
    with pytest.raises(SegmentWithSAM2Error, match=r"no label to prompt from \(values present: \[1, 2\]\)"):
        prompts_from_labels(labels, image, "box", values={5})


def test_box_rows_become_one_object_per_label(tmp_path):
    (tmp_path / "boxes.csv").write_text("case_id,object,label,corner1,corner2,space\n"
                                        "a,liver,1,\"1 2 3\",\"10 12 3\",IJK\n"
                                        "a,liver,1,1;2;5,10;12;5,IJK\n"
                                        "a,spleen,4,3 3 3,6 6 3,IJK\n"
                                        "b,liver,1,0 0 0,4 4 0,IJK\n")
    rows = read_box_rows(tmp_path / "boxes.csv")
    prompts = prompts_from_boxes(rows["a"], "case a")
    assert prompts["space"] == "IJK"
    assert [(o["name"], o["label"], len(o["boxes"])) for o in prompts["objects"]] == [("liver", 1, 2), ("spleen", 4, 1)]
    assert prompts["objects"][0]["boxes"][1] == {"corner1": [1.0, 2.0, 5.0], "corner2": [10.0, 12.0, 5.0]}


def test_a_bad_corner_says_what_a_corner_is(tmp_path):
    with pytest.raises(SegmentWithSAM2Error, match=r'three numbers \(e.g. "10 20 5"\), got \'1 2\''):
        prompts_from_boxes([{"case_id": "a", "label": "1", "corner1": "1 2", "corner2": "3 4 5"}], "case a")
