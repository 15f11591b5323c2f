"""Checkpoint loading: always ``weights_only``, strict, and a mismatch explained.

sam2 checkpoints are ``{"model": state_dict}``; a bare state dict is accepted too.  When the
keys or shapes do not fit the config, the message names the missing and unexpected keys and,
from the checkpoint's fingerprint (trunk width, block count, SAM2 vs SAM2.1 keys), the configs
it would fit.  Image size cannot be told from weights (MedSAM2's 512-px config takes SAM2.1-tiny
weights unchanged), so those configs are named together.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ..errors import CheckpointError

_SHOWN = 5
_HIERA_DEFAULT_STAGES = (2, 3, 16, 3)  # sam2's Hiera default (base+ configs leave it out)


def read_state_dict(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if found:
            raise CheckpointError(
                f"refused to load {path}: it needs arbitrary Python code ({found.group(1)}) to unpickle, which is "
                "unsafe; only tensors are loaded (weights_only). Re-save it as {'model': state_dict}") from None
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?)") from None
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?): {error}") from None
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = list(data)[:_SHOWN] if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path} holds no state dict (expected {{'model': state_dict}} or a state dict; found {keys})")
    return state


def _read_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file (corrupt or truncated?): {error}") from None
    # a sam2 state dict saved flat, or saved under a "model." prefix
    if state and all(key.startswith("model.") for key in state):
        state = {key[len("model."):]: value for key, value in state.items()}
    return state


def load_weights(model: torch.nn.Module, state: dict, path, config: Path) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or reshaped:
        raise CheckpointError(_mismatch_message(path, config, state, missing, unexpected, reshaped))
    model.load_state_dict(state, strict=True)


def sha256_of(path, chunk=1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _mismatch_message(path, config, state, missing, unexpected, reshaped) -> str:
    parts = [f"checkpoint {path} does not fit config {config.name}"]
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", reshaped)):
        if keys:
            more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
            parts.append(f"{len(keys)} {what} keys ({', '.join(keys[:_SHOWN])}{more})")
    fits = matching_configs(state)
    if fits:
        parts.append(f"it looks like a checkpoint for {' / '.join(fits)}; pass that with --config")
    return "; ".join(parts)


def fingerprint_of_state(state: dict) -> tuple | None:
    key = "image_encoder.trunk.patch_embed.proj.weight"
    if key not in state:
        return None
    blocks = {k.split(".")[3] for k in state if k.startswith("image_encoder.trunk.blocks.")}
    return int(state[key].shape[0]), len(blocks), "no_obj_embed_spatial" in state


def fingerprint_of_config(config: Path) -> tuple:
    model = OmegaConf.load(config).model
    trunk = model.image_encoder.trunk
    stages = trunk.get("stages", _HIERA_DEFAULT_STAGES)
    return int(trunk.embed_dim), int(sum(stages)), bool(model.get("no_obj_embed_spatial", False))


def matching_configs(state: dict) -> list[str]:
    from .registry import load_registry, resolve_config

    found = fingerprint_of_state(state)
    names = dict.fromkeys(spec.config for spec in load_registry().values())
    return [name for name in names if found is not None and fingerprint_of_config(resolve_config(name)) == found]
