"""Image features of each slice, kept for the life of a session (one volume, window, axis and
model: a change of any of them is a new session, so nothing stale can be served).

sam2 keeps the features of only the most recent frame.  Here every slice's backbone output is
kept, least recently used first out when the memory budget is reached, and reused by the second
direction's pass over the prompted slice, by re-propagations after corrections and by slice
previews.  The tensors are stored exactly as the image encoder produced them (bf16 under bf16
autocast, fp32 otherwise), so a cached slice gives the same result as a recomputed one.

On CUDA, ``encode_ahead`` runs the image encoder on the next slices of a pass in one batch
before sam2 asks for them: a batch keeps the GPU busy where single slices leave it waiting on
launches.  Off by default on the CPU, where a batch is not faster (MedSAM2 512 px, 24 slices, bf16
on this project's 2-core CPU: 15.4 s one at a time, 16.1 s in batches of 8) and the fp32 fidelity to
sam2's own predictor is tested voxel for voxel.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

DEFAULT_BUDGET_MB = 2048
DEFAULT_CUDA_BATCH = 16
# sam2 returns the input image next to its features but never uses it past the lookup; an empty
# stand-in saves 3 x S x S floats per slice.
_NO_IMAGE = torch.empty(1, 0, 0, 0)


class FeatureCache:
    def __init__(self, budget_mb: float = DEFAULT_BUDGET_MB):
        self.budget = int(budget_mb * 2 ** 20)
        self.bytes = 0
        self.hits = self.misses = 0
        self._entries: OrderedDict[int, list] = OrderedDict()
        self._positions = None  # the positional encodings are the same for every slice

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, index: int) -> bool:
        return index in self._entries

    def get(self, index: int, default=(None, None)):
        """sam2's lookup: (image, backbone_out) or ``default``."""
        levels = self._entries.get(index)
        if levels is None:
            self.misses += 1
            return default
        self._entries.move_to_end(index)
        self.hits += 1
        return _NO_IMAGE, {"backbone_fpn": list(levels), "vision_pos_enc": list(self._positions),
                           "vision_features": levels[-1]}

    def put(self, index: int, backbone_out: dict) -> None:
        levels = list(backbone_out["backbone_fpn"])
        size = sum(t.numel() * t.element_size() for t in levels)
        if size > self.budget or index in self._entries:
            return
        if self._positions is None:
            self._positions = list(backbone_out["vision_pos_enc"])
        while self._entries and self.bytes + size > self.budget:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= sum(t.numel() * t.element_size() for t in evicted)
        self._entries[index] = levels
        self.bytes += size


class CachedState(dict):
    """sam2's inference state whose "cached_features" is the session's FeatureCache: sam2 reads
    it with ``.get(frame)`` and replaces it with ``{frame: (image, features)}`` after computing
    one, which here adds that frame to the cache instead."""

    def __init__(self, state: dict, cache: FeatureCache):
        super().__init__(state)
        self.cache = cache

    def __getitem__(self, key):
        return self.cache if key == "cached_features" else super().__getitem__(key)

    def __setitem__(self, key, value):
        if key != "cached_features":
            return super().__setitem__(key, value)
        for index, (_, backbone_out) in value.items():
            self.cache.put(index, backbone_out)


def default_batch(device: torch.device) -> int:
    return DEFAULT_CUDA_BATCH if device.type == "cuda" else 0


def encode_ahead(predictor, frames, cache: FeatureCache, indices, device: torch.device) -> None:
    """Image features of the uncached ``indices`` in one batch, into ``cache``."""
    todo = [i for i in indices if i not in cache]
    if not todo:
        return
    images = torch.stack([frames[i] for i in todo])
    if device.type == "cuda":  # pinned: the copy runs beside the work already queued on the GPU
        images = images.pin_memory()
    backbone_out = predictor.forward_image(images.to(device, non_blocking=True))
    for n, index in enumerate(todo):
        # clones: a view would keep the whole batch alive in the cache
        cache.put(index, {key: [t[n:n + 1].clone() for t in backbone_out[key]]
                          for key in ("backbone_fpn", "vision_pos_enc")})
