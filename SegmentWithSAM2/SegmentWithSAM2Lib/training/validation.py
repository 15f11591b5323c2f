"""Validation during training: the engine run from one box on each object's middle slice
(the RECIST-like protocol of MedSAM2's papers), scored by Dice against the known labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.engine import PropagationOptions, VolumeSession
from ..core.model import LoadedModel
from ..samples import dice


def middle_slice_box(labels: np.ndarray, label: int) -> dict:
    """IJK prompt: the bounding box of ``label`` on the middle of its k-slices."""
    ks = np.nonzero((labels == label).any(axis=(1, 2)))[0]
    middle = int((ks.min() + ks.max()) // 2)
    rows, cols = np.nonzero(labels[middle] == label)
    return {"space": "IJK", "objects": [{"label": label, "boxes": [{
        "corner1": [int(cols.min()), int(rows.min()), middle], "corner2": [int(cols.max()), int(rows.max()), middle]}]}]}


def box_dice(model: LoadedModel, volume, labels: np.ndarray, label: int = 1) -> float:
    session = VolumeSession(model, volume, axis="k")
    result = session.propagate(middle_slice_box(labels, label), PropagationOptions())
    return dice(result.labelmap == label, labels == label)


def validator(predictor, config: Path, cases):
    """A ``validate(model) -> mean Dice`` callback for the training loop; ``cases`` are
    (volume, labels, label values to score), each label scored from its own middle-slice box."""
    def validate(_model) -> float:
        device = next(predictor.parameters()).device  # validated where it trains, in fp32
        wrapped = LoadedModel(predictor, "training", config, device, "fp32", "training")
        scores = [box_dice(wrapped, volume, labels, int(label)) for volume, labels, values in cases for label in values]
        return float(np.mean(scores))
    return validate
