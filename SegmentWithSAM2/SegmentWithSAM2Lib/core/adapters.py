"""LoRA adapters: low-rank updates of a base model's linear layers, in the project's own format.

An adapter is ``NAME.safetensors`` (per target module ``MODULE.lora_A`` of shape (rank, in) and
``MODULE.lora_B`` of shape (out, rank)) plus ``NAME.json``, its manifest::

    {"format_version": 1, "base_model": "medsam2-latest", "base_sha256": "...", "rank": 8,
     "alpha": 16, "dropout": 0.0, "target_modules": ["memory_attention.layers.*.self_attn.q_proj"],
     "training_data": "..."}

A target layer then computes ``W x + (alpha / rank) * B A x``.  Adapters apply at load time, on
top of each other where they touch different layers, and can be merged into the weights.  Files
are read and written by ``io.checkpoints``; here adapters are tensors only.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import SegmentWithSAM2Error

FORMAT_VERSION = 1


@dataclass
class Adapter:
    weights: dict  # module name -> (A, B)
    base_model: str
    base_sha256: str | None
    rank: int
    alpha: float
    dropout: float = 0.0
    target_modules: list = field(default_factory=list)
    training_data: str = ""

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def manifest(self) -> dict:
        return {"format_version": FORMAT_VERSION, "base_model": self.base_model, "base_sha256": self.base_sha256,
                "rank": self.rank, "alpha": self.alpha, "dropout": self.dropout,
                "target_modules": list(self.target_modules), "training_data": self.training_data}


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, a: torch.Tensor, b: torch.Tensor, scale: float, dropout: float = 0.0):
        super().__init__()
        self.base = base
        self.lora_A = nn.Parameter(a.to(base.weight))
        self.lora_B = nn.Parameter(b.to(base.weight))
        self.scale = scale
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x):
        return self.base(x) + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scale


def new_adapter(model: nn.Module, patterns, rank=8, alpha=16.0, dropout=0.0, base_model="", base_sha256=None,
                training_data="", seed=0) -> Adapter:
    """A fresh adapter for every linear layer matching ``patterns``: A random, B zero (no change yet)."""
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name, module in _targets(model, patterns):
        a = torch.randn(rank, module.in_features, generator=generator) / rank
        weights[name] = (a, torch.zeros(module.out_features, rank))
    if not weights:
        raise SegmentWithSAM2Error(f"no linear layer matches {list(patterns)}")
    return Adapter(weights, base_model, base_sha256, rank, float(alpha), dropout, list(patterns), training_data)


def apply_adapter(model: nn.Module, adapter: Adapter, base_sha256: str | None, merge: bool = False) -> None:
    """Add ``adapter`` to ``model`` in place, refusing one made for other base weights."""
    if adapter.base_sha256 and base_sha256 and adapter.base_sha256 != base_sha256:
        raise SegmentWithSAM2Error(
            f"the adapter was trained on base weights {adapter.base_sha256} ({adapter.base_model}), "
            f"but the loaded weights are {base_sha256}; load its base checkpoint")
    modules = dict(model.named_modules())
    for name, (a, b) in adapter.weights.items():
        layer = modules.get(name)
        if not isinstance(layer, nn.Linear) or tuple(a.shape[1:]) != (layer.in_features,) \
                or tuple(b.shape[:1]) != (layer.out_features,):
            raise SegmentWithSAM2Error(f"adapter layer {name!r} does not fit the model (another architecture?)")
        if merge:
            with torch.no_grad():
                layer.weight += (b @ a).to(layer.weight) * adapter.scale
        else:
            _replace(model, name, LoRALinear(layer, a, b, adapter.scale, adapter.dropout))


def attach_trainable(model: nn.Module, adapter: Adapter) -> list:
    """Freeze the base and insert the adapter's layers, trainable; returns their parameters."""
    for p in model.parameters():
        p.requires_grad_(False)
    apply_adapter(model, adapter, None)
    modules = dict(model.named_modules())
    return [param for name in adapter.weights for param in (modules[name].lora_A, modules[name].lora_B)]


def detach_trained(model: nn.Module, adapter: Adapter) -> Adapter:
    """The adapter with the weights its attached layers have now (copies)."""
    modules = dict(model.named_modules())
    adapter.weights = {name: (modules[name].lora_A.detach().clone(), modules[name].lora_B.detach().clone())
                       for name in adapter.weights}
    return adapter


def _targets(model, patterns):
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and any(fnmatch.fnmatchcase(name, p) for p in patterns):
            yield name, module


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
