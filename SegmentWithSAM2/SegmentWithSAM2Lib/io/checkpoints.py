"""Checkpoint and adapter files: read always ``weights_only``, adapters in the project's format
or PEFT's, and the one SHA-256 helper.

sam2 checkpoints are ``{"model": state_dict}``; a bare state dict is accepted too, and
``.safetensors`` (flat, or under a ``model.`` prefix).  An adapter is ``NAME.safetensors`` (per
target module ``MODULE.lora_A`` (rank, in) and ``MODULE.lora_B`` (out, rank)) plus ``NAME.json``,
its manifest (``core.adapters.Adapter.manifest``).
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import torch

from ..core.adapters import FORMAT_VERSION, Adapter
from ..core.weights import KEYS_SHOWN
from ..errors import CheckpointError, SegmentWithSAM2Error
from .atomic import write_atomic, write_text_atomic



def read_state_dict(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    data = _torch_load(path)
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = list(data)[:KEYS_SHOWN] if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path} holds no state dict (expected {{'model': state_dict}} or a state dict; found {keys})")
    return state


def _torch_load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch words it "Unsupported global: GLOBAL x" or (2.13) "Trying to load unsupported GLOBAL x"
        found = re.search(r"[Uu]nsupported (?:global: )?GLOBAL (\S+)", str(error))
        if found:
            raise CheckpointError(
                f"refused to load {path}: it needs arbitrary Python code ({found.group(1)}) to unpickle, which is "
                "unsafe; only tensors are loaded (weights_only). Re-save it as {'model': state_dict}") from error
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?)") from error
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?): {error}") from error


def _read_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file (corrupt or truncated?): {error}") from error
    # a sam2 state dict saved flat, or saved under a "model." prefix
    if state and all(key.startswith("model.") for key in state):
        state = {key[len("model."):]: value for key, value in state.items()}
    return state


def save_adapter(adapter: Adapter, path) -> Path:
    from safetensors.torch import save_file

    path = Path(path).with_suffix(".safetensors")
    tensors = {}
    for name, (a, b) in adapter.weights.items():
        tensors[f"{name}.lora_A"], tensors[f"{name}.lora_B"] = a.contiguous(), b.contiguous()
    write_atomic(path, lambda temporary: save_file(tensors, str(temporary)))
    write_text_atomic(path.with_suffix(".json"), json.dumps(adapter.manifest(), indent=2))
    return path


def load_adapter(path) -> Adapter:
    """Our format (``NAME.safetensors`` + ``NAME.json``) or a PEFT folder (``adapter_config.json``)."""
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        return _load_peft(path)
    if not path.exists() and path.with_suffix(".safetensors").is_file():
        path = path.with_suffix(".safetensors")  # NAME alone, as LoRA training names it
    manifest_path = path.with_suffix(".json")
    if not path.is_file() or not manifest_path.is_file():
        raise SegmentWithSAM2Error(f"adapter {path} needs its weights (.safetensors) and manifest (.json) side by side")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise SegmentWithSAM2Error(f"adapter manifest {manifest_path} has format {manifest.get('format_version')!r}, "
                                   f"this library reads {FORMAT_VERSION}")
    tensors = load_file(str(path))
    names = {key.rsplit(".", 1)[0] for key in tensors}
    weights = {name: (tensors[f"{name}.lora_A"], tensors[f"{name}.lora_B"]) for name in names}
    return Adapter(weights, manifest["base_model"], manifest.get("base_sha256"), int(manifest["rank"]),
                   float(manifest["alpha"]), float(manifest.get("dropout", 0.0)),
                   list(manifest.get("target_modules", [])), manifest.get("training_data", ""))


def _load_peft(folder: Path) -> Adapter:
    """LoRA weights saved by Hugging Face PEFT for the same modules (``base_model.model.`` keys)."""
    from safetensors.torch import load_file

    config = json.loads((folder / "adapter_config.json").read_text())
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    weights = {}
    for key in tensors:
        if key.endswith(".lora_A.weight"):
            name = key[: -len(".lora_A.weight")].removeprefix("base_model.model.")
            weights[name] = (tensors[key], tensors[key.replace(".lora_A.", ".lora_B.")])
    if not weights:
        raise SegmentWithSAM2Error(f"{folder} holds no LoRA weights in PEFT's layout (…lora_A.weight / lora_B.weight)")
    targets = config.get("target_modules") or []
    return Adapter(weights, str(config.get("base_model_name_or_path", "")), None, int(config["r"]),
                   float(config.get("lora_alpha", config["r"])), float(config.get("lora_dropout", 0.0)),
                   [targets] if isinstance(targets, str) else list(targets), "imported from PEFT")
