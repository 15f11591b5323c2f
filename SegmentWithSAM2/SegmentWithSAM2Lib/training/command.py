"""``segment-with-sam2 train``: annotated volumes from files and/or synthetic ones, three modes:
``scratch`` (random init), ``full`` (all weights from the checkpoint), ``lora`` (base frozen, an
adapter in the project's format written at the end)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import SegmentWithSAM2Error
from ..progress import StepProgressBar
from .clips import sample_clip
from .datasets import parse_labels, read_pairs
from .repair import freeze, reinit
from .synthetic import parse_shapes, synthetic_volume
from .trainer import TrainSettings, train
from .validation import validator

# attention in memory and decoder, and the decoder's per-mask output MLPs: a new structure's shape
# (a ring, say) is decided there, not in the image encoder, which LoRA leaves alone
LORA_TARGETS = ["memory_attention.layers.*.self_attn.*_proj", "memory_attention.layers.*.cross_attn_image.*_proj",
                "sam_mask_decoder.transformer.layers.*.*_proj",
                "sam_mask_decoder.transformer.final_attn_token_to_image.*_proj",
                "sam_mask_decoder.output_hypernetworks_mlps.*.layers.*"]


def run_training(args) -> int:
    from ..cli import model_from_args
    from ..core.adapters import new_adapter, save_adapter

    if args.synthetic <= 0 and not args.data:
        raise SegmentWithSAM2Error("give --data (a list file or a folder with images/ and labels/) and/or --synthetic N")
    args.random_init = args.random_init or args.mode == "scratch"
    model = model_from_args(args)
    if model.precision == "fp16":
        raise SegmentWithSAM2Error("training runs in bf16 or fp32 (fp16 would need loss scaling); "
                                   "use --precision bf16 or fp32")
    predictor = model.predictor
    rng = np.random.default_rng(args.seed)
    files = read_pairs(args.data, parse_labels(args.labels)) if args.data else []
    shapes = parse_shapes(args.synthetic_shapes)
    synthetic = [synthetic_volume(rng, objects=int(rng.integers(1, 3)), modality=("CT", "MR")[i % 2], shapes=shapes)
                 for i in range(args.synthetic)]
    parameters, adapter = None, None
    if args.mode == "lora":
        adapter = new_adapter(predictor, LORA_TARGETS, rank=args.rank, base_model=model.model_id,
                              base_sha256=None if model.weights.startswith("random") else model.weights,
                              training_data=f"{args.data or ''} + {args.synthetic} synthetic volumes (seed {args.seed})")
        parameters = _attach(predictor, adapter)

    sources = [c for c in (_catalogue(files), _catalogue(synthetic)) if c]
    output = Path(args.output)
    if args.rescale_image_features:
        _rescale(predictor, args, sources, model.image_size, output)
    if args.reinit:
        reinit(predictor, args.reinit, args.mode, model.config, args.seed, output)
    if args.freeze:
        freeze(predictor, args.freeze, args.mode)

    def next_clip(generator):
        # files and synthetic volumes half and half when both are given: a few real volumes
        # would otherwise be drowned by many synthetic ones
        catalogue = sources[int(generator.integers(len(sources)))]
        volume, labels, present = catalogue[int(generator.integers(len(catalogue)))]
        label = int(generator.choice(present))
        axis = "auto" if generator.random() < 0.6 else str(generator.choice(["i", "j", "k"]))
        return sample_clip(volume, labels, label, args.clip_length, model.image_size, generator, axis=axis,
                           leak=args.leak_corrections)

    validate = validator(predictor, model.config, _validation_cases(args, shapes))
    settings = TrainSettings(steps=args.steps, clip_length=args.clip_length, lr=args.lr, seed=args.seed,
                             checkpoint_every=max(1, min(200, args.steps)), autocast=model.autocast)
    with open(output.mkdir(parents=True, exist_ok=True) or output / "train.log", "a") as log, \
            StepProgressBar() as bar:
        train(predictor, next_clip, settings, output, parameters=parameters, validate=validate, on_step=bar.update,
              log=lambda line: print(line, file=log, flush=True) or bar.write(line))
    if adapter is not None:
        save_adapter(_detach(predictor, adapter), output / "adapter")
    else:
        torch.save({"model": predictor.state_dict()}, output / "model.pt")
    return 0


def _rescale(predictor, args, sources, image_size, output: Path):
    """Image features to the RMS asked for, measured on 8 training clips (a fixed draw); skipped
    when resuming, whose last.pt already holds the rescaled weights."""
    from .rescale import rescale_image_features

    if args.mode != "full":
        raise SegmentWithSAM2Error("--rescale-image-features changes the base weights: use it with --mode full")
    if (output / "last.pt").exists():
        return
    draw, frames = np.random.default_rng(args.seed + 20_000), []
    for i in range(64):
        catalogue = sources[i % len(sources)]
        volume, labels, present = catalogue[(i // len(sources)) % len(catalogue)]
        clip = sample_clip(volume, labels, int(present[0]), 1, image_size, draw, window="auto")
        frames += [clip.frames[0]] if clip is not None else []
        if len(frames) == 8:
            break
    if not frames:
        raise SegmentWithSAM2Error("--rescale-image-features found no labelled slice to measure the features on")
    factor = rescale_image_features(predictor, torch.stack(frames), args.rescale_image_features)
    print(f"image features scaled by {factor:.4g} to RMS {args.rescale_image_features}", flush=True)


def _validation_cases(args, shapes) -> list:
    """(volume, labels, label values): every structure of the held-out pairs of --validation-data
    (after --labels), else 6 held-out synthetic volumes scored on their last label."""
    if args.validation_data:
        cases = _catalogue(read_pairs(args.validation_data, parse_labels(args.labels)))
        if not cases:
            raise SegmentWithSAM2Error(f"--validation-data {args.validation_data} holds no labelled structure "
                                       "(after --labels)")
        return cases
    held_out = np.random.default_rng(args.seed + 10_000)  # never the training volumes
    synthetic = [synthetic_volume(held_out, (32, 96, 96), objects=1, modality=m, shapes=shapes) for m in ("CT", "MR") * 3]
    return [(volume, labels, [int(np.max(labels))]) for volume, labels in synthetic]


def _catalogue(pairs):
    """(volume, labels, label values present); unlabelled volumes teach nothing here."""
    catalogue = [(volume, labels, np.unique(labels)[np.unique(labels) > 0]) for volume, labels in pairs]
    return [item for item in catalogue if item[2].size]


def _attach(predictor, adapter):
    """Freeze the base and insert trainable LoRA layers; returns their parameters."""
    from ..core.adapters import apply_adapter

    for p in predictor.parameters():
        p.requires_grad_(False)
    apply_adapter(predictor, adapter, None)
    modules = dict(predictor.named_modules())
    params = []
    for name in adapter.weights:
        layer = modules[name]
        params += [layer.lora_A, layer.lora_B]
    return params


def _detach(predictor, adapter):
    modules = dict(predictor.named_modules())
    adapter.weights = {name: (modules[name].lora_A.detach().clone(), modules[name].lora_B.detach().clone())
                       for name in adapter.weights}
    return adapter
