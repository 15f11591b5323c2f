"""Behaviour of the shipped models — ``micro`` (model_zoo/micro/) and ``lite`` (LiteMedSAM with
memory trained here, model_zoo/lite/) — on volumes generated here, never seen in training:
following an object, stopping at its end, a negative click removing a leak, two objects keeping
their labels.  Both are demonstration models, not for clinical use."""

import functools

import numpy as np
import pytest

from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.core.metrics import dice
from SegmentWithSAM2Lib.core.metrics import middle_slice, middle_slice_box

SHAPE = (80, 128, 128)  # k, j, i
SPACING = (0.8, 0.8, 2.0)  # i, j, k (mm)


@functools.cache
def shipped(name):
    return load_model(name, device="cpu", precision="fp32")


NOT_YET_LITE = "lite after 400 steps with the carried box (2026-12-02): {}; issue 17 is open"


def both(not_yet_lite=None):
    """Each shipped model in turn; ``not_yet_lite``: what lite does not do yet (a strict xfail,
    so the test fails once it does and the mark must go)."""
    lite = pytest.param("lite", marks=pytest.mark.xfail(reason=NOT_YET_LITE.format(not_yet_lite), strict=True)) \
        if not_yet_lite else "lite"
    return pytest.mark.parametrize("name", ["micro", lite])


def ct_volume(labels, levels, seed):
    """CT-like HU: soft tissue at 40 with texture and noise, each label at its own level."""
    rng = np.random.default_rng(seed)
    values = np.asarray(levels, dtype=np.float32)[labels] + rng.normal(0, 12, labels.shape).astype(np.float32)
    return Volume(values, np.diag([*SPACING, 1.0]), {"modality": "CT"})


def ellipsoid(centre_kji, radii_kji):
    grid = np.indices(SHAPE, dtype=np.float32)
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre_kji, radii_kji)) <= 1.0


def box_prompts(labels, *label_values):
    objects = [middle_slice_box(labels, v)["objects"][0] for v in label_values]
    return {"space": "IJK", "objects": objects}


def extent(mask):
    ks = np.nonzero(mask.any(axis=(1, 2)))[0]
    return int(ks.min()), int(ks.max())


@pytest.fixture(scope="module")
def ellipsoid_case():
    """One ellipsoid spanning 30 slices (25..54) of 80."""
    labels = ellipsoid((39.5, 64, 60), (15.2, 26, 20)).astype(np.uint8)
    assert extent(labels) == (25, 54)
    return ct_volume(labels, [40, 160], seed=101), labels


@both()
def test_one_box_follows_an_ellipsoid_through_30_slices(name, ellipsoid_case):
    micro = shipped(name)
    volume, labels = ellipsoid_case
    result = VolumeSession(micro, volume, axis="k").propagate(box_prompts(labels, 1), PropagationOptions())
    score = dice(result.labelmap == 1, labels == 1)
    assert score >= 0.85, score


@both()
def test_auto_stop_ends_within_three_slices_past_the_object(name, ellipsoid_case):
    micro = shipped(name)
    volume, labels = ellipsoid_case
    session = VolumeSession(micro, volume, axis="k")
    stopped = session.propagate(box_prompts(labels, 1), PropagationOptions(auto_stop=True))
    everything = session.propagate(box_prompts(labels, 1), PropagationOptions(auto_stop=False))
    first, last = extent(labels)
    middle = middle_slice(labels, 1)  # where the box is
    # forward covers middle..last + at most 3, backward middle..first - at most 3
    assert stopped.slices_processed["forward"] <= last - middle + 1 + 3
    assert stopped.slices_processed["backward"] <= middle - first + 1 + 3
    assert everything.slices_processed == {"forward": SHAPE[0] - middle, "backward": middle + 1}
    assert not stopped.labelmap[:first].any() and not stopped.labelmap[last + 1:].any()


@both("the negative click does not remove the leak")
def test_a_negative_click_removes_a_leak_on_its_slice(name):
    """Two lobes of one intensity: A spans slices 18-62, B (38-62) touches it.  Tracked from a click
    on A on slice 26, where B is not there yet, the mask runs into B where it appears (one bright
    region); a negative click on B on the slice with the largest leak removes the leak there while A
    stays (the engine refines that slice's earlier logits with the click, as sam2 does)."""
    micro = shipped(name)
    lobe_a = ellipsoid((40, 64, 46), (22, 18, 16))
    lobe_b = ellipsoid((50, 64, 80), (12, 18, 16)) & ~lobe_a
    labels = lobe_a.astype(np.uint8) + 2 * lobe_b.astype(np.uint8)
    session = VolumeSession(micro, ct_volume(labels, [40, 170, 170], seed=202), axis="k")
    clicked = {"space": "IJK", "objects": [{"label": 1, "points": [{"position": [46, 64, 26], "positive": True}]}]}
    before = session.propagate(clicked, PropagationOptions())
    leaks = ((before.labelmap == 1) & lobe_b).sum(axis=(1, 2))
    k = int(leaks.argmax())
    assert leaks[k] > 0.3 * lobe_b[k].sum(), "precondition: tracking leaks into the touching lobe"
    j, i = np.argwhere(lobe_b[k]).mean(axis=0).round().astype(int)
    clicked["objects"][0]["points"].append({"position": [int(i), int(j), k], "positive": False})
    after = session.propagate(clicked, PropagationOptions(), previous=before)
    assert ((after.labelmap[k] == 1) & lobe_b[k]).sum() < 0.1 * leaks[k]
    assert dice(after.labelmap[k] == 1, lobe_a[k]) >= 0.8
    assert dice(after.labelmap[k] == 1, lobe_a[k]) > dice(before.labelmap[k] == 1, lobe_a[k])


@both()
def test_two_objects_prompted_together_keep_their_own_labels(name):
    """Prompted on different slices (30 and 46): each object is tracked from its own prompt, and
    where both claim a pixel the object prompted nearer that slice keeps it."""
    micro = shipped(name)
    labels = np.zeros(SHAPE, np.uint8)
    labels[ellipsoid((30, 50, 40), (10, 18, 14))] = 1
    labels[ellipsoid((46, 80, 88), (12, 16, 18))] = 2
    volume = ct_volume(labels, [40, 150, 260], seed=303)
    result = VolumeSession(micro, volume, axis="k").propagate(box_prompts(labels, 1, 2), PropagationOptions())
    for label in (1, 2):
        score = dice(result.labelmap == label, labels == label)
        assert score >= 0.8, (label, score)
