"""A model's training recipe: the stages that made its shipped weights, replayable.

A recipe (JSON, e.g. ``model_zoo/micro/recipe.json``) names the config, device and precision,
the data sets, and per stage the checkpoint it starts from (an earlier stage's result), the
model surgery done before it (``rescale_image_features``, ``reinit``; skipped when the stage
resumes, whose last.pt already holds them), and the training settings, prompt sampling included.
``run_stage`` replays one stage into ``runs/NAME-STAGE``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..errors import SegmentWithSAM2Error
from ..synthetic import parse_shapes
from .clips import PromptSampling, sample_clip
from .data import HELD_OUT_SEED_OFFSET, catalogue, held_out_synthetic, parse_labels, read_pairs, synthetic_pairs
from .fine_tune import TrainConfig, TrainingData, train_model
from .surgery import reinit, rescale_image_features

RESCALE_CLIPS = 8  # training clips the image features' RMS is measured on


def read_recipe(path) -> dict:
    path = Path(path)
    recipe = json.loads(path.read_text())
    recipe["folder"] = path.parent
    return recipe


def stage_of(recipe: dict, name: str) -> dict:
    stages = {str(s["stage"]): s for s in recipe["stages"]}
    if str(name) not in stages:
        raise SegmentWithSAM2Error(f"the recipe has no stage {name!r}; it has {', '.join(stages)}")
    return stages[str(name)]


def stage_config(stage: dict) -> TrainConfig:
    return TrainConfig(mode=stage["mode"], steps=int(stage["steps"]), clip_length=int(stage["clip_length"]),
                       lr=float(stage["lr"]), freeze=tuple(stage.get("freeze", ())), seed=int(stage["seed"]),
                       sampling=PromptSampling(leak_corrections=float(stage.get("leak_corrections", 0.0))))


def stage_data(recipe: dict, stage: dict) -> TrainingData:
    """The stage's annotated files and synthetic volumes, drawn exactly as `train` draws them."""
    rng = np.random.default_rng(int(stage["seed"]))
    files = []
    for name in stage.get("data", []):
        source = recipe["data"][name]
        files += read_pairs(recipe["folder"] / source["list"], parse_labels(source.get("labels")))
    shapes = parse_shapes(stage.get("shapes"))
    synthetic = synthetic_pairs(rng, int(stage.get("synthetic", 0)), shapes)
    return TrainingData(catalogue(files), catalogue(synthetic), held_out_synthetic(int(stage["seed"]), shapes),
                        f"recipe stage {stage['stage']}")


def run_stage(recipe: dict, name: str, runs: Path, load_model, *, steps: int | None = None, log=print) -> Path:
    """Replay stage ``name`` into ``runs/<model>-<name>``; ``load_model(checkpoint|None, seed)``
    gives the starting model (None: random weights); ``steps`` shortens the stage (a check, not the recipe)."""
    stage = stage_of(recipe, name)
    output = Path(runs) / f"{recipe['model']}-{stage['stage']}"
    start = stage.get("from")
    checkpoint = None if start is None else Path(runs) / f"{recipe['model']}-{start}" / "model.pt"
    model = load_model(checkpoint, int(stage["seed"]))  # the seed also fixes torch's draws, as `train --seed` did
    data = stage_data(recipe, stage)
    config = stage_config(stage)
    if steps is not None:
        config = TrainConfig(**{**config.__dict__, "steps": int(steps)})
    if not (output / "last.pt").exists():
        _surgery(model, stage, data, log)
    return train_model(model, data, config, output, log=log)


def _surgery(model, stage: dict, data: TrainingData, log) -> None:
    surgery = stage.get("surgery", {})
    if "rescale_image_features" in surgery:
        frames = _measuring_frames(data, int(stage["seed"]), model.image_size)
        factor = rescale_image_features(model.predictor, frames, float(surgery["rescale_image_features"]))
        log(f"image features scaled by {factor:.4g} to RMS {surgery['rescale_image_features']}")
    if "reinit" in surgery:
        reinit(model.predictor, surgery["reinit"], model.config, int(stage["seed"]))


def _measuring_frames(data: TrainingData, seed: int, image_size: int) -> torch.Tensor:
    """First frames of a fixed draw of training clips, one per labelled structure in turn."""
    draw, frames, sources = np.random.default_rng(seed + HELD_OUT_SEED_OFFSET), [], data.sources
    for i in range(64):
        catalogue_ = sources[i % len(sources)]
        volume, labels, present = catalogue_[(i // len(sources)) % len(catalogue_)]
        clip = sample_clip(volume, labels, int(present[0]), 1, image_size, draw, window="auto")
        frames += [clip.frames[0]] if clip is not None else []
        if len(frames) == RESCALE_CLIPS:
            return torch.stack(frames)
    if not frames:
        raise SegmentWithSAM2Error("no labelled slice to measure the image features on")
    return torch.stack(frames)
