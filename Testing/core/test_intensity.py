"""One intensity mapping for the whole volume: windows, presets, percentiles, auto, bad values,
the frames built from it, and the checks on a volume's shape and matrix."""

import warnings

import numpy as np
import pytest

from SegmentWithSAM2Lib.core.frames import IMAGENET_MEAN, IMAGENET_STD, FrameSequence
from SegmentWithSAM2Lib.core.geometry import plan_slices
from SegmentWithSAM2Lib.core.inplane import InPlaneMap
from SegmentWithSAM2Lib.core.intensity import CT_PRESETS, resolve_window
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error

RAMP = np.linspace(-1000, 1000, 4 * 8 * 8).reshape(4, 8, 8)  # looks like Hounsfield units
POSITIVE = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)  # MR-like: no values below 0


def bounds(window):
    return [window.lower, window.upper]


@pytest.mark.parametrize("choice", ["40,400", " 40 , 400 "])
def test_center_width_is_linear_and_clipped(choice):
    window = resolve_window(choice, RAMP)
    assert bounds(window) == [-160.0, 240.0] and window.center_width == (40.0, 400.0)
    values = np.array([-500, -160, -60, 40, 140, 240, 900])
    np.testing.assert_allclose(window.apply(values), [0, 0, 63.75, 127.5, 191.25, 255, 255], rtol=1e-6)


@pytest.mark.parametrize("name, center_width", [("soft-tissue", (40, 400)), ("abdomen", (40, 350)),
                                                ("lung", (-500, 1400)), ("bone", (400, 1000)),
                                                ("brain", (50, 100)), ("liver", (60, 160)),
                                                ("mediastinum", (50, 350))])
def test_ct_presets_give_their_documented_windows(name, center_width):
    assert CT_PRESETS[name] == center_width
    for spelling in (name, name.upper()):
        window = resolve_window(spelling, RAMP)
        assert bounds(window) == [center_width[0] - center_width[1] / 2, center_width[0] + center_width[1] / 2]
        assert window.source == f"preset {name}"


@pytest.mark.parametrize("choice, qs", [("mr", (0.5, 99.5)), ("percentile", (0.5, 99.5)),
                                        ("percentile:2,98", (2, 98)), ("percentile:0,100", (0, 100))])
def test_percentile_windows(choice, qs):
    window = resolve_window(choice, POSITIVE)
    low, high = np.percentile(POSITIVE, qs)
    np.testing.assert_allclose(bounds(window), [low, high])
    np.testing.assert_allclose(window.apply(np.array([low, (low + high) / 2, high])), [0, 127.5, 255], rtol=1e-5)


def test_none_uses_values_as_they_are_clipped_to_0_255():
    window = resolve_window("none", POSITIVE)
    np.testing.assert_array_equal(window.apply(np.array([-5.0, 0, 12.25, 255, 300.0])), [0, 0, 12.25, 255, 255])


@pytest.mark.parametrize("array, metadata, expected", [
    (POSITIVE, {"window": (30, 100)}, [-20, 80]),  # DICOM tags win over everything
    (RAMP, {"window": ("300", "1500"), "modality": "CT"}, [-450, 1050]),
    (POSITIVE, {"modality": "CT"}, [-160, 240]),
    (RAMP, {}, [-160, 240]),  # Hounsfield-looking data without a modality tag
    (POSITIVE, {"modality": "PT"}, [0, np.percentile(POSITIVE, 99.5)]),
    (POSITIVE, {"modality": "MR"}, np.percentile(POSITIVE, [0.5, 99.5])),
    (RAMP, {"modality": "MR"}, np.percentile(RAMP, [0.5, 99.5])),  # the tag beats the value range
    (POSITIVE, {}, np.percentile(POSITIVE, [0.5, 99.5])),
    (POSITIVE, {"modality": "US"}, np.percentile(POSITIVE, [0.5, 99.5])),
])
def test_auto_window_by_tags_and_modality(array, metadata, expected):
    np.testing.assert_allclose(bounds(resolve_window("auto", array, metadata)), expected)


def test_auto_ignores_minus_infinity_when_guessing_hounsfield_units():
    values = POSITIVE.copy()
    values[0, 0, 0] = -np.inf  # a fill value must not make MR data look like CT
    with pytest.warns(UserWarning, match="1 NaN/Inf voxels"):
        window = resolve_window("auto", values)
    np.testing.assert_allclose(bounds(window), np.percentile(values[np.isfinite(values)], [0.5, 99.5]))


def volume_with_different_slice_ranges():
    """Slices with very different ranges; the value 50 appears on every slice at (row 3, col 5)."""
    array = np.empty((3, 16, 16), dtype=np.int16)
    array[0] = np.arange(256).reshape(16, 16) // 3  # 0..85
    array[1] = np.arange(256).reshape(16, 16) * 4  # 0..1020
    array[2] = np.arange(256).reshape(16, 16) * 2 - 600  # -600..-90
    array[:, 3, 5] = 50
    return array


def gray(frame):
    """Undo the ImageNet normalization: the 0..255 gray value in each of the 3 channels."""
    return ((frame * IMAGENET_STD + IMAGENET_MEAN) * 255).numpy()


@pytest.mark.parametrize("choice", ["50,500", "percentile", "auto"])
def test_frames_share_one_mapping_and_leave_the_volume_untouched(choice):
    array = volume_with_different_slice_ranges()
    before = array.tobytes()
    plan = plan_slices(Volume(array, np.eye(4)), "k")
    window = resolve_window(choice, array)
    frames = FrameSequence(array, plan, window, InPlaneMap.fit((16, 16), (1, 1), 16))
    expected = np.clip((array.astype(float) - window.lower) / (window.upper - window.lower) * 255, 0, 255)
    assert len(frames) == 3
    for k in range(3):
        view = plan.view_of(expected)[k]
        values = gray(frames[k])
        for channel in values:
            np.testing.assert_allclose(channel, view, atol=2e-3)
        np.testing.assert_allclose(frames.windowed_slice(k), view, atol=2e-3)
    _, row, col = plan.ijk_to_slice([5, 3, 0])[0].astype(int)
    shared = [gray(frames[k])[0, row, col] for k in range(3)]
    np.testing.assert_allclose(shared, shared[0], atol=1e-4)  # same voxel value, same frame value
    assert array.tobytes() == before and array.dtype == np.int16


def test_frames_are_resized_into_the_model_frame_with_a_black_border():
    array = volume_with_different_slice_ranges()[:, :, :8]  # 16 x 8 slices
    plan = plan_slices(Volume(array, np.eye(4)), "k")
    inplane = InPlaneMap.fit(plan.slice_shape, plan.pixel_spacing, 32)
    frame = FrameSequence(array, plan, resolve_window("none", array), inplane)[1]
    assert frame.shape == (3, 32, 32) and inplane.footprint == (32, 16)
    np.testing.assert_allclose(gray(frame)[:, :, :inplane.offset[1]], 0, atol=1e-4)
    with pytest.raises(IndexError):
        FrameSequence(array, plan, resolve_window("none", array), inplane)[3]


def test_non_finite_voxels_show_at_the_lower_bound_with_a_warning():
    array = np.linspace(0, 100, 4 * 6 * 6, dtype=np.float32).reshape(4, 6, 6)
    array[2, 1, 1:4] = [np.nan, np.inf, -np.inf]
    with pytest.warns(UserWarning, match="3 NaN/Inf voxels are shown at the window's lower bound"):
        window = resolve_window("0,100", array)
    plan = plan_slices(Volume(array, np.eye(4)), "k")
    frame = gray(FrameSequence(array, plan, window, InPlaneMap.fit((6, 6), (1, 1), 6))[2])
    for _, row, col in plan.ijk_to_slice([[1, 1, 2], [2, 1, 2], [3, 1, 2]]).astype(int):
        np.testing.assert_allclose(frame[:, row, col], 0, atol=1e-4)
    assert np.isfinite(frame).all()
    np.testing.assert_allclose(window.apply(np.array([np.nan, np.inf, -np.inf, 100.0])), [0, 0, 0, 255])


@pytest.mark.parametrize("choice, array, message", [
    ("auto", np.full((2, 4, 4), 7.0), r"constant \(every voxel is 7.0\)"),
    ("40,0", RAMP, "width must be positive, got 0"),
    ("40,-5", RAMP, "width must be positive, got -5"),
    ("sunset", RAMP, "unknown window 'sunset'; use auto, none, mr"),
    ("40", RAMP, "unknown window '40'"),
    ("40,abc", RAMP, "cannot read window '40,abc'; expected two numbers"),
    ("40,400,5", RAMP, "expected two numbers"),
    ("percentile:90,10", RAMP, "percentiles must satisfy 0 <= LOW < HIGH <= 100"),
    ("percentile:-1,50", RAMP, "LOW < HIGH"),
    ("percentile:0,101", RAMP, "LOW < HIGH"),
    ("percentile:5,5", RAMP, "LOW < HIGH"),
    ("percentile:low,high", RAMP, "expected two numbers"),
    ("mr", np.concatenate([np.zeros(999), [1.0]]).reshape(10, 10, 10), r"window is empty"),
])
def test_bad_windows_and_volumes_are_clear_errors(choice, array, message):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these should warn
        with pytest.raises(SegmentWithSAM2Error, match=message):
            resolve_window(choice, array)


def test_an_all_nan_volume_is_a_clear_error():
    with pytest.warns(UserWarning, match="32 NaN/Inf"):
        with pytest.raises(SegmentWithSAM2Error, match="no finite voxel values"):
            resolve_window("auto", np.full((2, 4, 4), np.nan))


@pytest.mark.parametrize("array, message", [(np.zeros((4, 4)), r"2D \(4, 4\).*needs a 3D volume"),
                                            (np.zeros((2, 2, 2, 2)), r"4 dimensions.*single 3D volume"),
                                            (np.zeros((0, 4, 4)), r"empty \(shape \(0, 4, 4\)\)"),
                                            (np.zeros((2, 2, 2), dtype=complex), "complex")])
def test_volume_shapes_are_checked(array, message):
    with pytest.raises(SegmentWithSAM2Error, match=message):
        Volume(array, np.eye(4))


@pytest.mark.parametrize("matrix, message", [(np.diag([1.0, 0.0, 1.0, 1.0]), "singular"),
                                             (np.eye(3), "finite 4x4"),
                                             (np.diag([1.0, np.nan, 1.0, 1.0]), "finite 4x4")])
def test_bad_matrices_are_refused(matrix, message):
    with pytest.raises(SegmentWithSAM2Error, match=message):
        Volume(np.zeros((2, 2, 2)), matrix)
    assert np.allclose(Volume.from_lps(np.zeros((2, 2, 2)), np.eye(4)).ijk_to_ras, np.diag([-1, -1, 1, 1]))


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint8])
def test_medsam2_window_is_its_8_bit_path_in_numpys_arithmetic_for_the_dtype(dtype):
    """clip, rescale the clipped volume's own min..max, truncate: as MedSAM2's scripts compute it
    on such an array (float64 for integer voxels, float32 stays float32)."""
    rng = np.random.default_rng(5)
    low = 0 if dtype is np.uint8 else -1024
    array = rng.integers(low, 255 if dtype is np.uint8 else 900, (4, 33, 29)).astype(dtype)
    if dtype is np.float32:
        array += rng.random(array.shape, dtype=np.float32)
    lower, upper = (10.0, 200.0) if dtype is np.uint8 else (-1350.0, 150.0)
    window = resolve_window(f"medsam2:{(lower + upper) / 2:g},{upper - lower:g}", array)
    expected = np.clip(array, lower, upper)
    expected = np.uint8((expected - expected.min()) / (expected.max() - expected.min()) * 255.0)
    assert np.array_equal(window.apply(array), expected.astype(np.float32))
    assert np.array_equal(np.stack([window.apply(s) for s in array]), window.apply(array))  # slice by slice too
    assert window.eight_bit and window.source.startswith("medsam2: clipped")


def test_medsam2_window_wraps_any_choice_and_refuses_an_empty_one():
    array = np.full((2, 4, 4), -1000, dtype=np.int16)
    array[0, 0, 0] = 300
    assert resolve_window("medsam2", array, {"modality": "CT"}).source.endswith("(auto: CT soft-tissue preset), 8-bit")
    with pytest.raises(SegmentWithSAM2Error, match="one value inside the window"):
        resolve_window("medsam2:40,400", np.where(array > 0, 600, 500).astype(np.int16), {})  # all above 240
