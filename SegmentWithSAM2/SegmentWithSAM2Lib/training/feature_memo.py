"""Training with a frozen image encoder: each frame's trunk output computed once and reused.

The trunk (Hiera, TinyViT) is what costs (LiteMedSAM's TinyViT ~1.5 s a frame on 2 CPU cores,
about ten times the rest of a training step); a frozen one gives the same output for the same
frame, so its outputs are kept per frame, keyed by the frame's bytes, in a bounded LRU.  Frames
repeat only if sampling repeats them: train with a fixed window (TrainConfig.window) for hits.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict

import torch


class TrunkMemo:
    def __init__(self, trunk: torch.nn.Module, max_frames: int):
        self.trunk, self.max_frames = trunk, max_frames
        self.kept: OrderedDict[bytes, object] = OrderedDict()
        self.hits = self.misses = 0
        self._forward = trunk.forward

    def __call__(self, frames: torch.Tensor):
        if torch.is_inference_mode_enabled():  # validation through the engine: its tensors cannot train
            return self._forward(frames)
        keys = [hashlib.blake2b(f.detach().cpu().numpy().tobytes(), digest_size=16).digest() for f in frames]
        missing = [i for i, key in enumerate(keys) if key not in self.kept]
        self.hits, self.misses = self.hits + len(keys) - len(missing), self.misses + len(missing)
        if missing:
            with torch.no_grad():
                out = self._forward(frames[missing])
            for n, i in enumerate(missing):
                self.kept[keys[i]] = _pick(out, n)
        for key in keys:
            self.kept.move_to_end(key)
        while len(self.kept) > self.max_frames:
            self.kept.popitem(last=False)
        return _stack([self.kept[key] for key in keys])


@contextlib.contextmanager
def memoized_trunk(predictor, max_frames: int):
    """While inside, ``predictor.image_encoder.trunk`` answers from the memo (when it is frozen
    and ``max_frames`` > 0); yields the memo (or None)."""
    trunk = predictor.image_encoder.trunk
    if max_frames <= 0 or any(p.requires_grad for p in trunk.parameters()):
        yield None
        return
    memo = TrunkMemo(trunk, max_frames)
    trunk.forward = memo  # an instance attribute: the state dict is untouched
    try:
        yield memo
    finally:
        del trunk.forward


def _pick(out, n):
    """Frame ``n`` of a trunk output: a tensor, or a list/tuple of them (multi-scale)."""
    if torch.is_tensor(out):
        return out[n:n + 1].clone()
    return type(out)(t[n:n + 1].clone() for t in out)


def _stack(items):
    if torch.is_tensor(items[0]):
        return torch.cat(items)
    return type(items[0])(torch.cat(level) for level in zip(*items))
