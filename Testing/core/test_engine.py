"""Engine behaviour with a real sam2 model (random weights): directions, range, several prompted
slices, auto-stop, progress and cancel."""

import numpy as np
import pytest
import torch

from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.errors import Cancelled, SegmentWithSAM2Error

from support import random_model

SLICES = 10


@pytest.fixture(scope="module")
def volume():
    rng = np.random.default_rng(3)
    return Volume(rng.normal(40, 30, (SLICES, 64, 48)).astype(np.float32), np.diag([0.8, 0.8, 2.0, 1.0]))


def point_on(k):
    return {"space": "IJK", "objects": [{"name": "lesion", "points": [{"position": [24, 30, k], "positive": True}]}]}


def options(**kw):
    kw.setdefault("auto_stop", False)
    return PropagationOptions(**kw)


def model_with_object_score(bias):
    """A real model whose object-score head is biased: always present (+) or always absent (-)."""
    model = random_model()
    with torch.no_grad():
        model.predictor.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(bias)
    return model


def test_range_bounds_the_work_and_the_output(medsam2_random, volume):
    session = VolumeSession(medsam2_random, volume, window="0,200")
    result = session.propagate(point_on(5), options(slice_range=(3, 7)))
    assert result.slices_processed == {"forward": 3, "backward": 3}
    assert result.reached == {"forward": 7, "backward": 3}  # the last slice each direction ran through
    assert not result.labelmap[:3].any() and not result.labelmap[8:].any()
    with pytest.raises(SegmentWithSAM2Error, match="outside the range 6:9"):
        session.propagate(point_on(5), options(slice_range=(6, 9)))
    with pytest.raises(SegmentWithSAM2Error, match="not within slices 0:9"):
        session.propagate(point_on(5), options(slice_range=(2, 10)))


def test_several_prompted_slices_start_each_direction_at_its_end(medsam2_random, volume):
    prompts = point_on(2)
    prompts["objects"][0]["points"].append({"position": [20, 28, 7], "positive": True})
    session = VolumeSession(medsam2_random, volume, window="0,200")
    progress = []
    session.propagate(prompts, options(), on_progress=lambda *a: progress.append(a))
    forward = [index for _, _, index, name in progress if name == "forward"]
    backward = [index for _, _, index, name in progress if name == "backward"]
    assert forward == list(range(2, SLICES)) and backward == list(range(7, -1, -1))
    assert [done for done, *_ in progress] == list(range(1, len(progress) + 1))
    assert {total for _, total, *_ in progress} == {len(progress)}


def test_auto_stop_ends_a_direction_after_empty_slices(volume):
    absent = VolumeSession(model_with_object_score(-50.0), volume, window="0,200")
    stopped = absent.propagate(point_on(5), PropagationOptions(auto_stop=True, stop_after=3))
    assert stopped.slices_processed == {"forward": 4, "backward": 4}  # the prompted slice + 3 empty ones
    assert stopped.reached == {"forward": 8, "backward": 2} and not stopped.labelmap.any()
    full = absent.propagate(point_on(5), options())
    assert full.slices_processed == {"forward": 5, "backward": 6}
    present = VolumeSession(model_with_object_score(50.0), volume, window="0,200")
    assert present.propagate(point_on(5), PropagationOptions(auto_stop=True)).slices_processed == {
        "forward": 5, "backward": 6}


def test_auto_stop_also_ends_on_empty_masks_whatever_the_object_score(volume):
    blank = model_with_object_score(50.0)  # scored present everywhere ...
    with torch.no_grad():
        for mlp in blank.predictor.sam_mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.zero_()  # ... but every mask logit is 0: nothing drawn
            mlp.layers[-1].bias.zero_()
    stopped = VolumeSession(blank, volume, window="0,200").propagate(point_on(5), PropagationOptions(stop_after=3))
    assert stopped.slices_processed == {"forward": 4, "backward": 4} and not stopped.labelmap.any()


def test_cancel_stops_within_one_slice_and_returns_nothing(medsam2_random, volume):
    session = VolumeSession(medsam2_random, volume, window="0,200")
    calls = []

    def cancel_on_third():
        calls.append(1)
        return len(calls) >= 3

    with pytest.raises(Cancelled):
        session.propagate(point_on(5), options(), should_cancel=cancel_on_third)
    assert len(calls) == 3
    calls.clear()
    partial = session.propagate(point_on(5), options(), should_cancel=cancel_on_third, keep_partial=True)
    assert partial.cancelled and partial.slices_processed == {"forward": 2, "backward": 0}
    assert not partial.labelmap[:5].any()


def test_objects_keep_their_labels_and_the_volume_is_untouched(medsam2_random, volume):
    before = volume.array.copy()
    prompts = {"space": "IJK", "objects": [
        {"label": 3, "boxes": [{"corner1": [2, 2, 4], "corner2": [20, 30, 4]}]},
        {"label": 7, "boxes": [{"corner1": [26, 34, 4], "corner2": [45, 60, 4]}]}]}
    result = VolumeSession(medsam2_random, volume, window="0,200").propagate(prompts, options())
    assert set(np.unique(result.labelmap)) <= {0, 3, 7}
    assert result.labelmap.shape == volume.array.shape and result.labelmap.dtype == np.uint8
    np.testing.assert_array_equal(volume.array, before)


def test_objects_prompted_on_other_slices_are_tracked_from_their_own_prompts(medsam2_random, volume):
    """Each object's passes start at its own prompted slice (not at another object's), and
    together they give each object's own result wherever the other object is absent."""
    first = {"label": 1, "points": [{"position": [12, 16, 2], "positive": True}]}
    second = {"label": 2, "points": [{"position": [36, 48, 7], "positive": True}]}
    session = VolumeSession(medsam2_random, volume, window="0,200")
    progress = []
    both = session.propagate({"space": "IJK", "objects": [first, second]}, options(),
                             on_progress=lambda *a: progress.append(a))
    starts = [index for (_, _, index, name), before in zip(progress, [None] + progress) if before is None
              or before[3] != name]
    assert starts == [2, 2, 7, 7]  # object 1 forward and backward, then object 2
    assert both.slices_processed == {"forward": (SLICES - 2) + (SLICES - 7), "backward": 3 + 8}
    alone = [session.propagate({"space": "IJK", "objects": [o]}, options()).labelmap for o in (first, second)]
    np.testing.assert_array_equal(both.labelmap[alone[1] == 0], alone[0][alone[1] == 0])
    np.testing.assert_array_equal(both.labelmap[alone[0] == 0], alone[1][alone[0] == 0])
    # where both claim a voxel, the object prompted nearer its slice keeps it (slices 0-4: object 1)
    overlap = (alone[0] != 0) & (alone[1] != 0)
    nearer = np.broadcast_to(np.where(np.arange(SLICES) <= 4, 1, 2)[:, None, None], overlap.shape)
    assert overlap.any()
    np.testing.assert_array_equal(both.labelmap[overlap], nearer[overlap])


def test_mask_prompt_lands_back_on_its_voxels_through_an_oblique_grid(medsam2_random, oblique_volume):
    """sam2 passes a mask prompt through as the prompted slice's output, so the round trip
    volume -> frame -> labelmap must put it back on the same voxels, for every axis."""
    for axis in ("axial", "coronal", "sagittal"):
        session = VolumeSession(medsam2_random, oblique_volume, axis=axis, window="0,400")
        mask = np.zeros(oblique_volume.array.shape, dtype=bool)
        view = session.plan.view_of(mask)
        s = view.shape[0] // 2
        rows, cols = view.shape[1:]
        view[s, rows // 4: 3 * rows // 4, cols // 4: 3 * cols // 4] = True
        prompts = {"space": "IJK", "objects": [{"masks": [{"slice": s, "mask": mask}]}]}
        result = session.propagate(prompts, options(slice_range=(s, s), postprocess=None))
        np.testing.assert_array_equal(result.labelmap.astype(bool), mask, err_msg=axis)


def test_a_correction_refines_only_the_slices_whose_prompts_changed(medsam2_random, volume):
    session = VolumeSession(medsam2_random, volume, window="0,200")
    first = session.propagate(point_on(5), options())
    assert set(first.low_res) == {(1, s) for s in range(SLICES)}
    again = session.propagate(point_on(5), options(), previous=first)
    np.testing.assert_array_equal(again.labelmap, first.labelmap)  # nothing changed, nothing refined

    corrected_prompts = point_on(5)
    corrected_prompts["objects"][0]["points"].append({"position": [10, 12, 8], "positive": False})
    fresh = session.propagate(corrected_prompts, options())
    corrected = session.propagate(corrected_prompts, options(), previous=first)
    # slice 8 started from its earlier mask (sam2's mask input next to the click), so it differs
    # from a fresh start; the untouched prompt on slice 5 is conditioned exactly as before
    assert not np.array_equal(corrected.labelmap[8], fresh.labelmap[8])
    np.testing.assert_array_equal(corrected.labelmap[5], fresh.labelmap[5])


def test_repropagating_from_a_corrected_slice_keeps_everything_before_it(medsam2_random, volume):
    session = VolumeSession(medsam2_random, volume, window="0,200")
    prompts = point_on(2)
    prompts["objects"].append({"name": "other", "label": 2, "points": [{"position": [8, 8, 3], "positive": True}]})
    first = session.propagate(prompts, options())
    prompts["objects"][0]["points"].append({"position": [24, 30, 6], "positive": False})
    corrected = session.propagate(prompts, options(direction="forward", slice_range=(6, SLICES - 1)), previous=first)
    assert corrected.slices_processed == {"forward": SLICES - 6}  # only from the corrected slice on
    np.testing.assert_array_equal(corrected.labelmap[:6], first.labelmap[:6])
    # object 2 was not re-run: its voxels in the range are kept wherever object 1 did not take them
    kept = first.labelmap[6:] == 2
    assert np.all((corrected.labelmap[6:] == 2) | (corrected.labelmap[6:] == 1) | ~kept)
    assert set(corrected.low_res) >= {(1, s) for s in range(SLICES)}
    prompts["objects"].append({"name": "new", "label": 3, "points": [{"position": [5, 5, 7], "positive": False},
                                                                     {"position": [9, 9, 1], "positive": True}]})
    with pytest.raises(SegmentWithSAM2Error, match="'new' has only negative points there and no earlier mask"):
        session.propagate(prompts, options(direction="forward", slice_range=(6, SLICES - 1)), previous=first)


def test_repropagation_runs_away_from_the_earlier_prompts():
    from SegmentWithSAM2Lib.core.engine import SegmentationResult, span_from
    from SegmentWithSAM2Lib.core.prompts import ObjectInputs, SliceInputs

    earlier = SegmentationResult(np.zeros((1, 1, 1), np.uint8), [ObjectInputs("o", 1, (1, 0, 0), {48: SliceInputs()})],
                                 {}, 0.0, None)
    assert span_from(earlier, 58, 96) == ("forward", (58, 95))
    assert span_from(earlier, 40, 96) == ("backward", (0, 40))
