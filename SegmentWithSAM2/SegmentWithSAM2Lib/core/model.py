"""Building a SAM2-family video predictor from a config, with weights, on a device and precision."""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ..errors import RandomWeightsWarning, Remedy, SegmentWithSAM2Error
from ..options import DEVICES, PRECISIONS, look_up
from .adapters import apply_adapter
from .weights import load_weights

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# What sam2's own build_sam2_video_predictor sets, except hole filling: sam2 needs its CUDA
# extension for it and skips it (warning every frame) without one, so we fill holes ourselves.
# A config may set its own values (lite_256.yaml does), and a SAM2Base becomes sam2's video predictor.
_SAM2_BASE = "sam2.modeling.sam2_base.SAM2Base"
_VIDEO_PREDICTOR = "sam2.sam2_video_predictor.SAM2VideoPredictor"
_PREDICTOR_DEFAULTS = [
    "model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
    "model.binarize_mask_from_pts_for_mem_enc=true",
    "model.fill_hole_area=0",
]


@dataclass
class LoadedModel:
    predictor: torch.nn.Module  # sam2's SAM2VideoPredictor
    model_id: str
    config: Path
    device: torch.device
    precision: str
    weights: str  # checkpoint SHA-256, or "random (seed N)"

    @property
    def image_size(self) -> int:
        return int(self.predictor.image_size)

    def autocast(self):
        dtype = _DTYPES[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)


def build_model(config_path: Path, state: dict | None = None, *, source="", seed=0, device="auto",
                precision="auto", adapters=(), merge_adapters=False, model_id="", weights="",
                candidates: dict | None = None) -> LoadedModel:
    """A predictor built from ``config_path`` with the weights ``state`` (None: random, seeded),
    the ``adapters`` (core.adapters.Adapter) applied in order, on a device and precision.

    ``weights`` identifies the weights (their checkpoint's SHA-256; adapters made for other base
    weights are refused); ``source`` and ``candidates`` (name -> config) word a mismatch.
    """
    torch_device = pick_device(device)
    chosen_precision = pick_precision(precision, torch_device)
    predictor = build_predictor(config_path, seed)
    if state is None:
        weights = f"random (seed {seed})"
        warnings.warn(f"RANDOM WEIGHTS (seed {seed}): masks are meaningless; use only for tests and benchmarks",
                      RandomWeightsWarning, stacklevel=3)
    else:
        load_weights(predictor, state, source, config_path, candidates)
    for adapter in adapters:
        apply_adapter(predictor, adapter, None if state is None else weights, merge_adapters)
    predictor = predictor.to(torch_device).eval()
    return LoadedModel(predictor, model_id or f"custom:{config_path.name}", config_path, torch_device,
                       chosen_precision, weights)


def build_predictor(config_path: Path, seed: int = 0) -> torch.nn.Module:
    from hydra.utils import instantiate

    cfg = OmegaConf.merge(OmegaConf.from_dotlist(_PREDICTOR_DEFAULTS), OmegaConf.load(config_path))
    if cfg.model.get("_target_") == _SAM2_BASE:
        cfg.model._target_ = _VIDEO_PREDICTOR
    OmegaConf.resolve(cfg)
    torch.manual_seed(seed)
    try:
        predictor = instantiate(cfg.model, _recursive_=True)
    except Exception as error:
        raise SegmentWithSAM2Error(f"config {config_path} does not build a sam2 model: {error}") from error
    predictor.memory_attention.register_forward_pre_hook(_memory_in_features_dtype, with_kwargs=True)
    return predictor


def _memory_in_features_dtype(_module, args, kwargs):
    """sam2's video predictor stores memories in bf16.  Usually object pointers (fp32) join them
    and torch.cat promotes the lot to fp32; for an object whose only prompt lies ahead of the
    tracked slice there are no pointers yet, and in fp32 sam2 then fails on bf16 memories.  Cast
    them as the concatenation would have (a no-op whenever the dtypes already agree)."""
    current = kwargs.get("curr")
    memory = kwargs.get("memory")
    if current is None or memory is None or not torch.is_tensor(memory):
        return args, kwargs
    dtype = current[0].dtype if isinstance(current, (list, tuple)) else current.dtype
    if memory.dtype != dtype:
        kwargs["memory"] = memory.to(dtype)
        kwargs["memory_pos"] = kwargs["memory_pos"].to(dtype) if kwargs.get("memory_pos") is not None else None
    return args, kwargs


def pick_device(device: str) -> torch.device:
    look_up(device, DEVICES, "device")
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SegmentWithSAM2Error("device cuda was asked for but torch sees no CUDA GPU", Remedy("use_cpu"))
    if device == "mps" and not has_mps:
        raise SegmentWithSAM2Error("device mps was asked for but is not available", Remedy("use_cpu"))
    return torch.device(device)


def pick_precision(precision: str, device: torch.device) -> str:
    look_up(precision, PRECISIONS, "precision")
    if precision == "fp16" and device.type == "cpu":
        raise SegmentWithSAM2Error("fp16 does not run on the CPU (torch's CPU autocast has no float16)",
                                   Remedy("choose_precision"))
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu" and _native_cpu_bf16():
        return "bf16"  # native bf16 (AVX512-BF16 / AMX): about 1.4x faster per slice here
    return "fp32"


def _native_cpu_bf16() -> bool:
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)
