"""Image features of each slice, kept for the life of a session (one volume, window, axis and
model: a change of any of them is a new session, so nothing stale can be served).

sam2 keeps the features of only the most recent frame.  Here every slice's backbone output is
kept, least recently used first out when the memory budget is reached, and reused by the second
direction's pass over the prompted slice, by re-propagations after corrections and by slice
previews; on a GPU, slices past the device budget move to host memory instead of being dropped.
The tensors are stored exactly as the image encoder produced them (bf16 under bf16
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
DEFAULT_HOST_BUDGET_MB = 8192
# sam2 returns the input image next to its features but never uses it past the lookup; an empty
# stand-in saves 3 x S x S floats per slice.
_NO_IMAGE = torch.empty(1, 0, 0, 0)


class FeatureCache:
    """Backbone outputs by slice index, least recently used first out past ``budget_mb``.

    With a ``host_budget_mb`` (on a GPU: the volume's features need not fit in device memory),
    entries past the device budget move to pinned host memory instead of being dropped, and a
    hit there copies them back (promoted to most recently used); past the host budget they go.
    """

    def __init__(self, budget_mb: float = DEFAULT_BUDGET_MB, host_budget_mb: float = 0.0):
        self.budget, self.host_budget = int(budget_mb * 2 ** 20), int(host_budget_mb * 2 ** 20)
        self.bytes = self.host_bytes = 0
        self.hits = self.misses = 0
        self._entries: OrderedDict[int, list] = OrderedDict()
        self._host: OrderedDict[int, tuple[list, torch.device]] = OrderedDict()
        self._positions = None  # the positional encodings are the same for every slice

    def __len__(self) -> int:
        return len(self._entries) + len(self._host)

    def __contains__(self, index: int) -> bool:
        return index in self._entries or index in self._host

    def on_host(self, index: int) -> bool:
        return index in self._host

    def get(self, index: int, default=(None, None)):
        """sam2's lookup: (image, backbone_out) or ``default``."""
        if index in self._host:
            self._promote(index)
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
        if _nbytes(levels) > self.budget or index in self:
            return
        if self._positions is None:
            self._positions = list(backbone_out["vision_pos_enc"])
        self._add(index, levels)

    def _add(self, index, levels):
        self._entries[index] = levels
        self.bytes += _nbytes(levels)
        while len(self._entries) > 1 and self.bytes > self.budget:  # never the entry just added
            old, evicted = self._entries.popitem(last=False)
            self.bytes -= _nbytes(evicted)
            self._offload(old, evicted)

    def _offload(self, index, levels):
        size = _nbytes(levels)
        if size > self.host_budget:
            return
        device = levels[0].device
        pin = device.type == "cuda"  # pinned: copies both ways run beside the GPU's queued work
        self._host[index] = ([_to_host(t, pin) for t in levels], device)
        self.host_bytes += size
        while self.host_bytes > self.host_budget:
            _, (dropped, _) = self._host.popitem(last=False)
            self.host_bytes -= _nbytes(dropped)

    def _promote(self, index):
        levels, device = self._host.pop(index)
        self.host_bytes -= _nbytes(levels)
        self._add(index, [t.to(device, non_blocking=True) for t in levels])


def _nbytes(levels) -> int:
    return sum(t.numel() * t.element_size() for t in levels)


def _to_host(tensor: torch.Tensor, pin: bool) -> torch.Tensor:
    if tensor.device.type == "cpu":
        return tensor
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=pin)
    return host.copy_(tensor, non_blocking=pin)  # stream-ordered before any later copy back


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


def default_host_budget(device: torch.device) -> float:
    """MB of host memory for features offloaded from a GPU (none on the CPU: they are there)."""
    return DEFAULT_HOST_BUDGET_MB if device.type == "cuda" else 0.0


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
