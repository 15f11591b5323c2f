"""Slice axis choice, radiological orientation, and exact round trips voxel <-> slice <-> frame."""

import numpy as np
import pytest
import torch

from SegmentWithSAM2Lib.core.geometry import plan_slices
from SegmentWithSAM2Lib.core.inplane import InPlaneMap
from SegmentWithSAM2Lib.core.prompts import place_prompts
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error

from support import oblique_lps_matrix

AXES = ("auto", "axial", "coronal", "sagittal", "i", "j", "k")


def identity_volume(shape_kji=(5, 6, 7)):
    return Volume(np.zeros(shape_kji), np.eye(4))


@pytest.mark.parametrize("axis, expected", [("axial", 2), ("coronal", 1), ("sagittal", 0), ("auto", 2),
                                            ("i", 0), ("j", 1), ("k", 2)])
def test_slice_axis_for_an_identity_ras_grid(axis, expected):
    assert plan_slices(identity_volume(), axis).slice_axis == expected


@pytest.mark.parametrize("negate", [None, 0, 1, 2])
def test_slice_axis_on_an_oblique_lps_grid_with_negative_directions(oblique_volume, negate):
    """i ~ superior, j ~ right, k ~ posterior (rotated 20 degrees), any axis possibly reversed."""
    matrix = oblique_volume.ijk_to_lps.copy()
    if negate is not None:
        matrix[:3, negate] *= -1
    volume = Volume.from_lps(oblique_volume.array, matrix)
    assert [plan_slices(volume, a).slice_axis for a in ("axial", "coronal", "sagittal")] == [0, 2, 1]


def ras_step(volume, plan, along):
    """The RAS displacement of one step along the view's rows (along=1) or columns (along=2)."""
    index = np.zeros((3, 3), dtype=int)
    index[1:, along] = 1  # the neighbour of pixel (0, 0, 0) along that image axis
    grid = np.arange(volume.array.size).reshape(volume.array.shape)
    view = plan.view_of(grid)
    voxels = [np.argwhere(grid == view[tuple(p)])[0][::-1] for p in index[:2]]  # (i, j, k)
    return volume.ijk_to_ras_points(voxels[1])[0] - volume.ijk_to_ras_points(voxels[0])[0]


@pytest.mark.parametrize("negate", [None, 1])
def test_views_are_oriented_as_a_radiologist_reads_them(oblique_volume, negate):
    matrix = oblique_volume.ijk_to_lps.copy()
    if negate is not None:
        matrix[:3, negate] *= -1
    volume = Volume.from_lps(oblique_volume.array, matrix)
    axial, coronal, sagittal = (plan_slices(volume, a) for a in ("axial", "coronal", "sagittal"))
    assert ras_step(volume, axial, 2)[0] < 0 and ras_step(volume, axial, 1)[1] < 0  # R->L, A->P
    assert ras_step(volume, coronal, 2)[0] < 0 and ras_step(volume, coronal, 1)[2] < 0  # R->L, S->I
    assert ras_step(volume, sagittal, 2)[1] < 0 and ras_step(volume, sagittal, 1)[2] < 0  # A->P, S->I


@pytest.mark.parametrize("axis", AXES)
def test_voxels_prompts_and_labels_round_trip_for_every_axis(oblique_volume, axis):
    plan = plan_slices(oblique_volume, axis)
    inplane = InPlaneMap.fit(plan.slice_shape, plan.pixel_spacing, 512)
    view = plan.view_of(oblique_volume.array)
    labels = np.zeros(oblique_volume.array.shape, dtype=np.uint8)
    for i, j, k in [(0, 0, 0), (55, 39, 6), (13, 27, 4)]:
        s, r, c = plan.ijk_to_slice([i, j, k])[0]
        assert view[int(s), int(r), int(c)] == oblique_volume.array[k, j, i]
        lps = oblique_volume.ijk_to_lps @ [i, j, k, 1]
        expected = inplane.slice_to_frame([r, c])[0]
        for space, position in (("IJK", [i, j, k]), ("LPS", lps[:3]), ("RAS", lps[:3] * [-1, -1, 1])):
            placed = place_prompts({"space": space, "objects": [{"points": [{"position": list(position)}]}]},
                                   oblique_volume, plan, inplane)[0]
            (x, y), = placed.slices[int(s)].points
            np.testing.assert_allclose([y, x], expected, atol=1e-6)
        plan.view_of(labels)[int(s), int(r), int(c)] = 5
        assert labels[k, j, i] == 5


def test_identity_map_for_square_slices_at_model_size():
    inplane = InPlaneMap.fit((512, 512), (0.7, 0.7), 512)
    assert inplane.is_identity
    image = torch.rand(1, 512, 512)
    assert inplane.image_to_frame(image) is image and inplane.frame_to_image(image) is image


@pytest.mark.parametrize("shape, spacing", [((100, 60), (1.0, 1.0)), ((80, 80), (0.5, 1.0)),
                                            ((1024, 1024), (0.4, 0.4)), ((60, 130), (2.0, 0.9))])
def test_non_square_slices_and_pixels_keep_their_aspect_and_map_back(shape, spacing):
    inplane = InPlaneMap.fit(shape, spacing, 512)
    physical = np.array(shape) * spacing
    assert max(inplane.footprint) == 512
    assert abs(inplane.footprint[0] / inplane.footprint[1] - physical[0] / physical[1]) < 2 / min(inplane.footprint)
    assert np.all(np.abs(np.array(inplane.offset) * 2 + inplane.footprint - 512) <= 1)  # centred
    points = np.array([[0.0, 0.0], [shape[0] - 1, shape[1] - 1], [3.25, 17.5]])
    np.testing.assert_allclose(inplane.frame_to_slice(inplane.slice_to_frame(points)), points, atol=1e-9)
    frame = inplane.image_to_frame(torch.ones(1, *shape))[0]
    r0, c0 = inplane.offset
    assert frame[:r0].abs().sum() == 0 and frame[:, :c0].abs().sum() == 0  # zero border
    block = torch.zeros(shape)
    block[shape[0] // 4: shape[0] // 2, shape[1] // 4: shape[1] // 4 + 12] = 1  # even edges: 2x shrink
    logits = inplane.image_to_frame(block[None])[0] * 2 - 1
    back = inplane.frame_to_image(logits[None])[0] > 0
    wrong = int((back != (block > 0)).sum())
    shrinking = inplane.footprint[0] < shape[0]
    assert wrong <= (4 if shrinking else 0)  # the anti-aliasing filter may round off the 4 corners


def test_a_bright_pixel_lands_where_the_map_says():
    inplane = InPlaneMap.fit((128, 64), (1.0, 2.0), 512)  # 4x scale, square physical extent
    image = torch.zeros(1, 128, 64)
    image[0, 50, 20] = 1.0
    frame = inplane.image_to_frame(image)[0]
    peak = np.unravel_index(int(frame.argmax()), frame.shape)
    expected = inplane.slice_to_frame([50, 20])[0]
    assert np.all(np.abs(np.array(peak) - expected) <= 0.5)


def test_unknown_axis_is_refused():
    with pytest.raises(SegmentWithSAM2Error, match="unknown slice axis 'x'"):
        plan_slices(identity_volume(), "x")


def test_oblique_matrix_fixture_is_what_the_tests_assume():
    directions = oblique_lps_matrix()[:3, :3] / np.linalg.norm(oblique_lps_matrix()[:3, :3], axis=0)
    ras = directions * [[-1], [-1], [1]]
    assert np.argmax(abs(ras[:, 0])) == 2 and np.argmax(abs(ras[:, 1])) == 0 and np.argmax(abs(ras[:, 2])) == 1
