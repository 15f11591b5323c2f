"""One intensity mapping for the whole volume: windows, presets, percentiles, auto, and bad values."""

import numpy as np
import pytest

from SegmentWithSAM2Lib.core.frames import IMAGENET_MEAN, IMAGENET_STD, FrameSequence
from SegmentWithSAM2Lib.core.geometry import plan_slices
from SegmentWithSAM2Lib.core.inplane import InPlaneMap
from SegmentWithSAM2Lib.core.intensity import CT_PRESETS, resolve_window
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error

RAMP = np.linspace(-1000, 1000, 4 * 8 * 8).reshape(4, 8, 8)


def test_center_width_is_linear_and_clipped():
    window = resolve_window("40,400", RAMP)
    assert (window.lower, window.upper) == (-160.0, 240.0)
    np.testing.assert_allclose(window.apply(np.array([-500, -160, 40, 240, 900])), [0, 0, 127.5, 255, 255])


@pytest.mark.parametrize("name, center_width", [("soft-tissue", (40, 400)), ("abdomen", (40, 350)),
                                                ("lung", (-500, 1400)), ("bone", (400, 1000)),
                                                ("brain", (50, 100)), ("liver", (60, 160))])
def test_ct_presets(name, center_width):
    assert CT_PRESETS[name] == center_width
    assert resolve_window(name.upper(), RAMP).center_width == center_width


def test_percentiles_none_and_auto_by_modality():
    values = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    mr = resolve_window("mr", values)
    np.testing.assert_allclose([mr.lower, mr.upper], np.percentile(values, [0.5, 99.5]))
    custom = resolve_window("percentile:2,98", values)
    np.testing.assert_allclose([custom.lower, custom.upper], np.percentile(values, [2, 98]))
    none = resolve_window("none", values)
    np.testing.assert_array_equal(none.apply(np.array([-5.0, 12.25, 300.0])), [0, 12.25, 255])
    assert resolve_window("auto", values, {"window": (30, 100)}).center_width == (30, 100)
    assert resolve_window("auto", values, {"modality": "CT"}).center_width == (40, 400)
    assert resolve_window("auto", RAMP).source == "auto: CT soft-tissue preset"  # HU without a tag
    pet = resolve_window("auto", values, {"modality": "PT"})
    np.testing.assert_allclose([pet.lower, pet.upper], [0, np.percentile(values, 99.5)])
    assert resolve_window("auto", values, {"modality": "MR"}).lower == mr.lower


def test_frames_share_one_mapping_and_leave_the_volume_untouched():
    array = np.zeros((3, 16, 16), dtype=np.int16)
    array[0], array[1], array[2] = 100, 300, -200  # very different ranges: per-slice min-max would differ
    array[:, 3, 5] = 50  # one voxel with the same value on every slice
    before = array.copy()
    plan = plan_slices(Volume(array, np.eye(4)), "k")
    frames = FrameSequence(array, plan, resolve_window("50,500", array), InPlaneMap.fit((16, 16), (1, 1), 16))
    _, row, col = plan.ijk_to_slice([5, 3, 0])[0].astype(int)
    gray = [((frames[k] * IMAGENET_STD + IMAGENET_MEAN) * 255).numpy() for k in range(3)]
    for k, expected_rest in enumerate((153.0, 255.0, 0.0)):  # window -200..300
        np.testing.assert_allclose(gray[k][:, row, col], 127.5, atol=1e-3)  # 50 -> the window's centre
        np.testing.assert_allclose(gray[k][:, 0, 0], expected_rest, atol=1e-2)
    np.testing.assert_array_equal(array, before)


def test_non_finite_voxels_show_at_the_lower_bound_with_a_warning():
    values = np.linspace(0, 100, 64, dtype=np.float32).reshape(4, 4, 4)
    values[0, 0, :3] = [np.nan, np.inf, -np.inf]
    with pytest.warns(UserWarning, match="3 NaN/Inf voxels"):
        window = resolve_window("mr", values)
    np.testing.assert_array_equal(window.apply(values[0, 0, :3]), [0, 0, 0])


@pytest.mark.parametrize("choice, array, message", [
    ("auto", np.full((2, 4, 4), 7.0), "constant"),
    ("auto", np.full((2, 4, 4), np.nan), "no finite voxel"),
    ("40,0", RAMP, "width must be positive"),
    ("40,-5", RAMP, "width must be positive"),
    ("sunset", RAMP, "unknown window 'sunset'"),
    ("40,abc", RAMP, "expected two numbers"),
    ("percentile:90,10", RAMP, "LOW < HIGH"),
])
def test_bad_windows_and_volumes_are_clear_errors(choice, array, message):
    with pytest.warns() if np.isnan(array).any() else _no_warning():
        with pytest.raises(SegmentWithSAM2Error, match=message):
            resolve_window(choice, array)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("array, message", [(np.zeros((4, 4)), "2D"), (np.zeros((2, 2, 2, 2)), "4 dimensions"),
                                            (np.zeros((0, 4, 4)), "empty")])
def test_volume_shapes_are_checked(array, message):
    with pytest.raises(SegmentWithSAM2Error, match=message):
        Volume(array, np.eye(4))


def test_singular_matrix_is_refused():
    with pytest.raises(SegmentWithSAM2Error, match="singular"):
        Volume(np.zeros((2, 2, 2)), np.diag([1.0, 0.0, 1.0, 1.0]))
