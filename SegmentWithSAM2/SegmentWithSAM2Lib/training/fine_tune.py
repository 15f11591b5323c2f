"""Training a model on annotated volumes, as one typed call: ``train_model(model, data, config, output)``.

Three modes: ``scratch`` (the model's random weights), ``full`` (all weights, from the loaded
checkpoint) and ``lora`` (the base frozen; an adapter in the project's format is written at the
end).  The run is resumable (``output/last.pt``) and leaves ``training.json``, the settings it
ran with, beside its result, so it can be repeated.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.adapters import attach_trainable, detach_trained, new_adapter
from ..core.frames import frame_normalization
from ..core.model import LoadedModel
from ..errors import Remedy, SegmentWithSAM2Error
from ..options import TRAINING_MODES, look_up
from ..io.atomic import save_torch_atomic, write_text_atomic
from .clips import PromptSampling, sample_clip
from .evaluation import validator
from .losses import OBJECT_WEIGHT
from .surgery import freeze, frozen_parameters
from .trainer import TrainSettings, train

# attention in memory and decoder, and the decoder's per-mask output MLPs: a new structure's shape
# (a ring, say) is decided there, not in the image encoder, which LoRA leaves alone
LORA_TARGETS = ["memory_attention.layers.*.self_attn.*_proj", "memory_attention.layers.*.cross_attn_image.*_proj",
                "sam_mask_decoder.transformer.layers.*.*_proj",
                "sam_mask_decoder.transformer.final_attn_token_to_image.*_proj",
                "sam_mask_decoder.output_hypernetworks_mlps.*.layers.*"]


@dataclass(frozen=True)
class TrainConfig:
    mode: str = "full"
    steps: int = 1000
    clip_length: int = 4
    lr: float = 3e-4
    rank: int = 8  # LoRA rank
    freeze: tuple = ()  # modules whose weights stay as they are (full and scratch modes)
    seed: int = 0
    sampling: PromptSampling = field(default_factory=PromptSampling)
    window: str | None = None  # None: a jittered window per clip; a fixed one lets memo_frames reuse features
    memo_frames: int = 0  # a frozen image encoder's outputs kept for this many frames (training.feature_memo)
    augment: bool = True  # zoom and intensity augmentation (off: frames repeat, for memo_frames)
    exits: float = 0.0  # share of clips that run out of the object's end (training.clips._start)
    object_weight: float = OBJECT_WEIGHT  # the object-presence loss's weight (SAM2's: 1)


@dataclass
class TrainingData:
    """Catalogues of (volume, labels, label values): annotated files and synthetic volumes (drawn
    half and half when both are given), and the validation cases scored during training."""

    files: list = field(default_factory=list)
    synthetic: list = field(default_factory=list)
    validation: list = field(default_factory=list)
    description: str = ""

    @property
    def sources(self) -> list:
        return [c for c in (self.files, self.synthetic) if c]


def train_model(model: LoadedModel, data: TrainingData, config: TrainConfig, output, *, on_step=None,
                log=print) -> Path:
    """Train ``model.predictor`` in place; returns the result's path (model.pt or adapter.safetensors)."""
    check_training(model, data, config)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    predictor, adapter, parameters = model.predictor, None, None
    if config.mode == "lora":
        adapter = new_adapter(predictor, LORA_TARGETS, rank=config.rank, base_model=model.model_id,
                              base_sha256=None if model.weights.startswith("random") else model.weights,
                              training_data=data.description)
        parameters = attach_trainable(predictor, adapter)
    if config.freeze:
        freeze(predictor, config.freeze)
    _write_manifest(output / "training.json", model, data, config)
    settings = TrainSettings(steps=config.steps, clip_length=config.clip_length, lr=config.lr, seed=config.seed,
                             checkpoint_every=max(1, min(200, config.steps)), autocast=model.autocast,
                             memo_frames=config.memo_frames, object_weight=config.object_weight)
    train(predictor, _clip_sampler(model, data, config), settings, output, parameters=parameters,
          validate=validator(model.config, data.validation), on_step=on_step, log=log)
    if adapter is not None:
        from ..io.checkpoints import save_adapter

        return save_adapter(detach_trained(predictor, adapter), output / "adapter")
    save_torch_atomic({"model": predictor.state_dict()}, output / "model.pt")
    return output / "model.pt"


def check_training(model, data, config) -> None:
    """Everything train_model would refuse, before any file is written."""
    look_up(config.mode, TRAINING_MODES, "training mode")
    if not data.sources:
        raise SegmentWithSAM2Error("no training data: give annotated volumes and/or synthetic ones")
    if not data.validation:
        raise SegmentWithSAM2Error("no validation case holds a labelled structure")
    if model.precision == "fp16":
        raise SegmentWithSAM2Error("training runs in bf16 or fp32 (fp16 would need loss scaling)",
                                   Remedy("choose_precision"))
    if config.freeze and config.mode == "lora":
        raise SegmentWithSAM2Error("freezing modules is for full and scratch training; lora already freezes the base")
    frozen_parameters(model.predictor, config.freeze or ["image_encoder"])  # unknown names are refused here


def _clip_sampler(model, data, config):
    sources = data.sources

    def next_clip(generator):
        # files and synthetic volumes half and half when both are given: a few real volumes
        # would otherwise be drowned by many synthetic ones
        catalogue = sources[int(generator.integers(len(sources)))]
        volume, labels, present = catalogue[int(generator.integers(len(catalogue)))]
        label = int(generator.choice(present))
        axis = "auto" if generator.random() < 0.6 else str(generator.choice(["i", "j", "k"]))
        return sample_clip(volume, labels, label, config.clip_length, model.image_size, generator, axis=axis,
                           window=config.window, sampling=config.sampling, augment=config.augment,
                           exits=config.exits, normalization=frame_normalization(model.predictor))
    return next_clip


def _write_manifest(path: Path, model, data, config) -> None:
    settings = dataclasses.asdict(config)
    settings["freeze"] = list(config.freeze)
    record = {"model": model.model_id, "config": model.config.name, "weights": model.weights,
              "precision": model.precision, "data": data.description, "settings": settings}
    write_text_atomic(path, json.dumps(record, indent=2, default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))
