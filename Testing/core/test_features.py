"""The session's feature cache: every slice's image features computed once and reused, exactly,
within a memory budget."""

import numpy as np
import torch

from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession
from SegmentWithSAM2Lib.core.features import FeatureCache
from SegmentWithSAM2Lib.core.volume import Volume

SLICES = 6


def volume():
    rng = np.random.default_rng(11)
    return Volume(rng.normal(40, 30, (SLICES, 48, 40)).astype(np.float32), np.diag([0.8, 0.8, 2.0, 1.0]))


def prompts(k=2, extra=None):
    points = [{"position": [20, 24, k], "positive": True}] + (extra or [])
    return {"space": "IJK", "objects": [{"label": 1, "points": points}]}


def test_each_slice_is_encoded_once_and_reuse_gives_identical_masks(medsam2_random, monkeypatch):
    session = VolumeSession(medsam2_random, volume(), window="0,200")
    encoded = []
    original = medsam2_random.predictor.forward_image
    monkeypatch.setattr(medsam2_random.predictor, "forward_image", lambda img: encoded.append(1) or original(img))
    options = PropagationOptions(auto_stop=False)
    first = session.propagate(prompts(), options)
    assert len(encoded) == SLICES  # the prompted slice is shared by both directions
    again = session.propagate(prompts(), options)
    assert len(encoded) == SLICES and session.features.misses == SLICES
    np.testing.assert_array_equal(again.labelmap, first.labelmap)
    fresh = VolumeSession(medsam2_random, volume(), window="0,200").propagate(prompts(), options)
    np.testing.assert_array_equal(fresh.labelmap, first.labelmap)  # cached features are the computed ones


def test_the_budget_bounds_the_cache_least_recently_used_first():
    cache = FeatureCache(budget_mb=1)
    entry = lambda: {"backbone_fpn": [torch.zeros(64, 64, 32)], "vision_pos_enc": [torch.zeros(1)]}  # noqa: E731
    for index in range(3):  # 512 KiB each: two fit in 1 MiB
        cache.put(index, entry())
    assert 0 not in cache and 1 in cache and 2 in cache and cache.bytes == 2 * 64 * 64 * 32 * 4
    cache.get(1)  # 1 is now the most recently used
    cache.put(3, entry())
    assert 1 in cache and 2 not in cache and 3 in cache
    assert cache.get(7) == (None, None) and cache.misses == 1 and cache.hits == 1


def test_past_the_device_budget_features_wait_in_host_memory_then_come_back():
    # the tiers' bookkeeping on CPU tensors (on a GPU the same moves are device <-> pinned copies)
    cache = FeatureCache(budget_mb=1, host_budget_mb=1)
    entries = {i: torch.full((64, 64, 32), float(i)) for i in range(5)}  # 512 KiB each
    for index in range(4):
        cache.put(index, {"backbone_fpn": [entries[index]], "vision_pos_enc": [torch.zeros(1)]})
    assert [cache.on_host(i) for i in range(4)] == [True, True, False, False]
    assert cache.bytes == cache.host_bytes == 2 * 64 * 64 * 32 * 4
    _, out = cache.get(0)  # back from the host tier, as computed; the least recent device entry leaves
    torch.testing.assert_close(out["backbone_fpn"][0], entries[0], rtol=0, atol=0)
    assert not cache.on_host(0) and cache.on_host(2) and cache.on_host(1)
    cache.put(4, {"backbone_fpn": [entries[4]], "vision_pos_enc": [torch.zeros(1)]})
    assert 1 not in cache and cache.on_host(2) and cache.on_host(3)  # past the host budget: dropped, oldest first
    assert len(cache) == 4 and cache.misses == 0 and cache.hits == 1
    assert cache.get(1) == (None, None) and cache.misses == 1


def test_a_preview_is_the_one_slice_propagation_without_memory_work(medsam2_random, monkeypatch):
    session = VolumeSession(medsam2_random, volume(), window="0,200")
    elsewhere = [{"position": [10, 10, 4], "positive": True}]  # another slice's prompt: left out
    single = session.propagate(prompts(2), PropagationOptions(slice_range=(2, 2), auto_stop=False))
    predictor = medsam2_random.predictor
    calls = []
    for name in ("forward_image", "_encode_new_memory"):
        original = getattr(predictor, name)
        monkeypatch.setattr(predictor, name, lambda *a, _o=original, _n=name, **k: calls.append(_n) or _o(*a, **k))
    preview = session.preview(prompts(2, elsewhere), 2, PropagationOptions(auto_stop=False))
    assert calls == []  # features from the cache, no memory encoder, no other slice
    np.testing.assert_array_equal(preview.labelmap, single.labelmap)
    assert preview.labelmap[2].any() and not np.delete(preview.labelmap, 2, axis=0).any()
    assert preview.slices_processed == {"preview": 1} and preview.settings["range"] == [2, 2]


def test_slices_encoded_in_batches_ahead_give_the_masks_of_one_at_a_time(medsam2_random, monkeypatch):
    # on by default only on CUDA; asked for here so that the CPU checks the batching itself
    assert VolumeSession(medsam2_random, volume(), window="0,200").encode_batch == 0
    batched = VolumeSession(medsam2_random, volume(), window="0,200", encode_batch=3)
    batches = []
    original = medsam2_random.predictor.forward_image
    monkeypatch.setattr(medsam2_random.predictor, "forward_image",
                        lambda img: batches.append(img.shape[0]) or original(img))
    options = PropagationOptions(auto_stop=False)
    result = batched.propagate(prompts(2), options)
    # the prompted slice alone, then forward 3,4,5 in one batch, backward 1,0 (what is left)
    assert batches == [1, 3, 2] and len(batched.features) == SLICES
    monkeypatch.setattr(medsam2_random.predictor, "forward_image", original)
    single = VolumeSession(medsam2_random, volume(), window="0,200").propagate(prompts(2), options)
    np.testing.assert_array_equal(result.labelmap, single.labelmap)
