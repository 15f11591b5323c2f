"""``train --freeze`` and ``--reinit``: keep some modules' weights as they are, or restart them
from fresh random ones, by their names in sam2's model (e.g. ``image_encoder``,
``sam_mask_decoder.transformer``)."""

from __future__ import annotations

from pathlib import Path

from ..errors import SegmentWithSAM2Error


def _modules(predictor, option: str, text: str) -> dict:
    """The named submodules of an option's comma list, or an error naming the top-level ones."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    known = dict(predictor.named_modules())
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        top = ", ".join(name for name, _ in predictor.named_children())
        missing = ", ".join(unknown) or repr(text)
        raise SegmentWithSAM2Error(f"{option}: no module {missing}; the model has {top} "
                                   "(and their submodules, e.g. sam_mask_decoder.transformer)")
    return {n: known[n] for n in names}


def freeze(predictor, modules: str, mode: str):
    """Leave these modules' weights as they are (``--freeze``)."""
    if mode == "lora":
        raise SegmentWithSAM2Error("--freeze is for full and scratch training; lora already freezes the base")
    for module in _modules(predictor, "--freeze", modules).values():
        for p in module.parameters():
            p.requires_grad_(False)


def reinit(predictor, modules: str, mode: str, config, seed: int, output: Path):
    """Fresh weights (those ``scratch`` would start from with this seed); skipped when resuming."""
    from ..core.model import build_predictor

    if mode != "full":
        raise SegmentWithSAM2Error("--reinit replaces part of the loaded weights: use it with --mode full")
    chosen = _modules(predictor, "--reinit", modules)
    if (output / "last.pt").exists():
        return
    fresh = dict(build_predictor(config, seed).named_modules())
    for name, module in chosen.items():
        module.load_state_dict(fresh[name].state_dict())
