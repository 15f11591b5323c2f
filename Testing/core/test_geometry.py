"""Slice axis choice, radiological orientation, exact round trips voxel <-> slice <-> frame,
and the in-plane map between a slice and the model's square frame."""

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
R, A, S = 0, 1, 2  # RAS component indices


def identity_volume(shape_kji=(5, 6, 7)):
    return Volume(np.zeros(shape_kji), np.eye(4))


def oblique(negate=None, shape_kji=(7, 40, 56)):
    """The oblique LPS grid (i ~ superior, j ~ right, k ~ posterior), one IJK axis optionally reversed;
    voxel values are unique."""
    matrix = oblique_lps_matrix()
    if negate is not None:
        matrix[:3, negate] *= -1
    return Volume.from_lps(np.arange(np.prod(shape_kji)).reshape(shape_kji), matrix)


@pytest.mark.parametrize("axis, expected", [("axial", 2), ("coronal", 1), ("sagittal", 0), ("auto", 2),
                                            ("i", 0), ("j", 1), ("k", 2)])
def test_slice_axis_for_an_identity_ras_grid(axis, expected):
    assert plan_slices(identity_volume(), axis).slice_axis == expected


@pytest.mark.parametrize("negate", [None, 0, 1, 2])
def test_slice_axis_on_an_oblique_lps_grid_with_negative_directions(negate):
    volume = oblique(negate)
    plans = {a: plan_slices(volume, a) for a in AXES}
    assert [plans[a].slice_axis for a in ("axial", "coronal", "sagittal")] == [0, 2, 1]
    assert plans["auto"] == plans["axial"]
    assert [(plans[a].slice_axis, plans[a].view) for a in "ijk"] == [(0, "axial"), (1, "sagittal"), (2, "coronal")]
    assert plans["axial"].num_slices == 56 and plans["coronal"].num_slices == 7


def image_steps(volume, plan):
    """RAS displacement of one step right along columns and one step down along rows of the view."""
    view = plan.view_of(np.arange(volume.array.size).reshape(volume.array.shape))

    def ras(s, r, c):
        k, j, i = np.unravel_index(view[s, r, c], volume.array.shape)
        return volume.ijk_to_ras_points([i, j, k])[0]
    return ras(0, 0, 1) - ras(0, 0, 0), ras(0, 1, 0) - ras(0, 0, 0)


def assert_points(step, ras_axis):
    """The step runs mainly along ras_axis and towards its negative end (to L, P or I)."""
    assert np.argmax(np.abs(step)) == ras_axis and step[ras_axis] < 0, step


@pytest.mark.parametrize("negate", [None, 0, 1, 2, "identity"])
def test_views_are_oriented_as_a_radiologist_reads_them(negate):
    volume = identity_volume() if negate == "identity" else oblique(negate)
    for view, (col_to, row_to) in {"axial": (R, A), "coronal": (R, S), "sagittal": (A, S)}.items():
        cols, rows = image_steps(volume, plan_slices(volume, view))
        assert_points(cols, col_to)  # axial/coronal: R->L (left on the right); sagittal: A->P
        assert_points(rows, row_to)  # anterior (axial) or superior (coronal, sagittal) at the top


def test_identity_grid_views_step_exactly_one_voxel():
    volume = identity_volume()
    steps = {v: image_steps(volume, plan_slices(volume, v)) for v in ("axial", "coronal", "sagittal")}
    np.testing.assert_array_equal(steps["axial"], [[-1, 0, 0], [0, -1, 0]])
    np.testing.assert_array_equal(steps["coronal"], [[-1, 0, 0], [0, 0, -1]])
    np.testing.assert_array_equal(steps["sagittal"], [[0, -1, 0], [0, 0, -1]])


def sample_voxels(shape_ijk, count=6, seed=0):
    corners = [[x * (n - 1) for x, n in zip(bits, shape_ijk)] for bits in np.ndindex(2, 2, 2)]
    rng = np.random.default_rng(seed)
    return corners + [[int(rng.integers(n)) for n in shape_ijk] for _ in range(count)]


def point_at(volume, space, i, j, k):
    ras = volume.ijk_to_ras_points([i, j, k])[0]
    return {"IJK": np.array([i, j, k]), "RAS": ras, "LPS": ras * [-1, -1, 1]}[space].tolist()


@pytest.mark.parametrize("negate", [None, 2])
@pytest.mark.parametrize("axis", AXES)
def test_voxels_prompts_and_labels_round_trip_for_every_axis(axis, negate):
    volume = oblique(negate)
    plan = plan_slices(volume, axis)
    inplane = InPlaneMap.fit(plan.slice_shape, plan.pixel_spacing, 64)
    view = plan.view_of(volume.array)
    labels = np.zeros(volume.array.shape, dtype=np.uint8)
    for n, (i, j, k) in enumerate(sample_voxels(volume.shape_ijk)):
        src = plan.ijk_to_slice([i, j, k])[0]
        s, r, c = (int(x) for x in np.round(src))
        np.testing.assert_array_equal(src, [s, r, c])  # voxel centres land on pixel centres
        assert view[s, r, c] == volume.array[k, j, i]
        expected = inplane.slice_to_frame([r, c])[0]
        for space in ("IJK", "RAS", "LPS"):
            prompts = {"space": space, "objects": [{"points": [{"position": point_at(volume, space, i, j, k)}]}]}
            placed = place_prompts(prompts, volume, plan, inplane)[0]
            assert list(placed.slices) == [s], space
            (x, y), = placed.slices[s].points
            np.testing.assert_allclose([y, x], expected, atol=1e-6)  # points are (x, y) = (col, row)
        plan.view_of(labels)[s, r, c] = n + 1
        assert labels[k, j, i] == n + 1
    assert np.count_nonzero(labels) == len(set(map(tuple, sample_voxels(volume.shape_ijk))))


def test_identity_map_for_square_slices_at_model_size():
    inplane = InPlaneMap.fit((512, 512), (0.7, 0.7), 512)
    assert inplane.is_identity and inplane.offset == (0, 0)
    image = torch.rand(1, 512, 512)
    assert inplane.image_to_frame(image) is image and inplane.frame_to_image(image) is image
    np.testing.assert_array_equal(inplane.slice_to_frame([[3, 400]]), [[3, 400]])
    assert not InPlaneMap.fit((512, 512), (0.5, 1.0), 512).is_identity  # square grid, non-square pixels


SHAPES = [((100, 60), (1.0, 1.0)), ((80, 80), (0.5, 1.0)), ((60, 130), (2.0, 0.9)),
          ((1024, 1024), (0.4, 0.4)), ((600, 400), (1.0, 1.0))]


@pytest.mark.parametrize("shape, spacing", SHAPES)
def test_non_square_slices_and_pixels_keep_their_aspect_and_are_centred(shape, spacing):
    inplane = InPlaneMap.fit(shape, spacing, 512)
    physical = np.array(shape) * spacing
    footprint, offset = np.array(inplane.footprint), np.array(inplane.offset)
    assert footprint.max() == 512
    assert np.all(np.abs(footprint - physical / physical.max() * 512) <= 0.5)
    assert abs(footprint[0] - footprint[1] * physical[0] / physical[1]) <= 1  # aspect within a pixel
    far = 512 - offset - footprint
    assert np.all((far - offset >= 0) & (far - offset <= 1))  # centred
    # the slice's outer edges (-0.5, n - 0.5) map onto the footprint's outer edges
    edges = inplane.slice_to_frame([[-0.5, -0.5], [shape[0] - 0.5, shape[1] - 0.5]])
    np.testing.assert_allclose(edges, [offset - 0.5, offset + footprint - 0.5], atol=1e-9)
    points = np.array([[0.0, 0.0], [shape[0] - 1, shape[1] - 1], [3.25, 17.5]])
    np.testing.assert_allclose(inplane.frame_to_slice(inplane.slice_to_frame(points)), points, atol=1e-9)
    frame = inplane.image_to_frame(torch.ones(1, *shape))[0]
    inside = torch.zeros(512, 512, dtype=torch.bool)
    inside[offset[0]:offset[0] + footprint[0], offset[1]:offset[1] + footprint[1]] = True
    assert frame[~inside].abs().sum() == 0 and inside.sum() == footprint.prod()  # zero border all round
    torch.testing.assert_close(frame[inside], torch.ones(int(inside.sum())))


def round_trip(inplane, shape, rows, cols):
    block = torch.zeros(shape)
    block[rows, cols] = 1
    logits = inplane.image_to_frame(block[None])[0] * 2 - 1
    return block > 0, inplane.frame_to_image(logits[None])[0] > 0


BLOCKS = [(slice(10, 14), slice(20, 24)), (slice(11, 16), slice(7, 14)), (slice(30, 33), slice(31, 39)),
          (slice(40, 52), slice(5, 11))]


@pytest.mark.parametrize("shape, spacing", [s for s in SHAPES if s[0][0] < 1024] + [((64, 64), (1.0, 1.0))])
@pytest.mark.parametrize("rows, cols", BLOCKS)
def test_a_mask_comes_back_on_the_same_pixels(shape, spacing, rows, cols):
    block, back = round_trip(InPlaneMap.fit(shape, spacing, 512), shape, rows, cols)
    assert torch.equal(back, block)


@pytest.mark.parametrize("rows, cols", BLOCKS)
def test_a_mask_survives_two_fold_down_scaling(rows, cols):
    """1024 -> 512 halves the resolution: blocks on the 2-pixel grid come back except (with the
    anti-aliasing filter) their corner pixels; any block differs at most on its outline."""
    shape = (1024, 1024)
    inplane = InPlaneMap.fit(shape, (1.0, 1.0), 512)
    grid = [(slice(s.start - s.start % 2, s.stop + s.stop % 2)) for s in (rows, cols)]
    block, back = round_trip(inplane, shape, *grid)
    corners = torch.zeros(shape, dtype=torch.bool)
    corners[[grid[0].start, grid[0].start, grid[0].stop - 1, grid[0].stop - 1],
            [grid[1].start, grid[1].stop - 1, grid[1].start, grid[1].stop - 1]] = True
    assert not ((back != block) & ~corners).any()
    block, back = round_trip(inplane, shape, rows, cols)
    outline = torch.zeros(shape, dtype=torch.bool)
    outline[rows.start - 1:rows.stop + 1, cols.start - 1:cols.stop + 1] = True
    outline[rows.start + 1:rows.stop - 1, cols.start + 1:cols.stop - 1] = False
    assert not ((back != block) & ~outline).any()
    assert back[rows.start + 1:rows.stop - 1, cols.start + 1:cols.stop - 1].all()


@pytest.mark.parametrize("shape, spacing, size", [((128, 64), (1.0, 2.0), 512), ((256, 256), (1.0, 1.0), 512),
                                                  ((170, 100), (1.0, 1.0), 510), ((40, 30), (0.9, 0.9), 160)])
def test_a_bright_pixel_lands_where_the_map_says(shape, spacing, size):
    inplane = InPlaneMap.fit(shape, spacing, size)
    assert np.all(inplane.scale == np.round(inplane.scale))  # integer scale factors
    for pixel in [(1, 1), (shape[0] // 3, shape[1] - 2), (shape[0] - 2, 7)]:  # off the edge (clamped there)
        image = torch.zeros(1, *shape)
        image[0, pixel[0], pixel[1]] = 1.0
        frame = inplane.image_to_frame(image)[0]
        peak = np.unravel_index(int(frame.argmax()), frame.shape)
        assert np.all(np.abs(np.array(peak) - inplane.slice_to_frame(pixel)[0]) <= 0.5), pixel


def test_unknown_axis_is_refused():
    with pytest.raises(SegmentWithSAM2Error, match="unknown slice axis 'x'"):
        plan_slices(identity_volume(), "x")


def test_oblique_matrix_fixture_is_what_the_tests_assume():
    ras = oblique(None).directions
    assert [int(np.argmax(abs(ras[:, n]))) for n in range(3)] == [S, R, A]
    assert ras[S, 0] > 0 and ras[R, 1] > 0 and ras[A, 2] < 0  # i ~ superior, j ~ right, k ~ posterior
