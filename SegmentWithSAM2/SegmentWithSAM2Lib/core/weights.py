"""A state dict into a model: strict, and a mismatch explained.

When the keys or shapes do not fit the config, the message names the missing and unexpected keys
and, from the state's fingerprint (trunk width, block count, SAM2 vs SAM2.1 keys), the candidate
configs it would fit.  Image size cannot be told from weights (MedSAM2's 512-px config takes
SAM2.1-tiny weights unchanged), so those configs are named together.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

from ..errors import CheckpointError, Remedy

KEYS_SHOWN = 5  # how many keys an error message about a state dict names
_HIERA_DEFAULT_STAGES = (2, 3, 16, 3)  # sam2's Hiera default (base+ configs leave it out)


def load_weights(model: torch.nn.Module, state: dict, source, config: Path, candidates: dict | None = None) -> None:
    """``state`` into ``model`` (built from ``config``); ``source`` names the weights in messages,
    ``candidates`` (name -> config path) are the configs a mismatch may suggest instead."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or reshaped:
        fits = matching_configs(state, candidates or {})
        raise CheckpointError(_mismatch_message(source, config, missing, unexpected, reshaped),
                              Remedy("choose_config", " / ".join(fits)) if fits else None)
    model.load_state_dict(state, strict=True)


def _mismatch_message(source, config, missing, unexpected, reshaped) -> str:
    parts = [f"checkpoint {source} does not fit config {config.name}"]
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", reshaped)):
        if keys:
            more = f" and {len(keys) - KEYS_SHOWN} more" if len(keys) > KEYS_SHOWN else ""
            parts.append(f"{len(keys)} {what} keys ({', '.join(keys[:KEYS_SHOWN])}{more})")
    return "; ".join(parts)


def fingerprint_of_state(state: dict) -> tuple | None:
    key = "image_encoder.trunk.patch_embed.proj.weight"
    if key not in state:
        return None
    blocks = {k.split(".")[3] for k in state if k.startswith("image_encoder.trunk.blocks.")}
    return int(state[key].shape[0]), len(blocks), "no_obj_embed_spatial" in state


def fingerprint_of_config(config: Path) -> tuple | None:
    """A Hiera config's (width, blocks, SAM2.1 keys); None for another image encoder (lite)."""
    model = OmegaConf.load(config).model
    trunk = model.image_encoder.get("trunk")
    if trunk is None:
        return None
    stages = trunk.get("stages", _HIERA_DEFAULT_STAGES)
    return int(trunk.embed_dim), int(sum(stages)), bool(model.get("no_obj_embed_spatial", False))


def matching_configs(state: dict, candidates: dict) -> list[str]:
    """The names of ``candidates`` (name -> config path) whose architecture ``state`` fits."""
    found = fingerprint_of_state(state)
    return [name for name, path in candidates.items() if found is not None and fingerprint_of_config(path) == found]
