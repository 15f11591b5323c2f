"""Training and evaluation data: (volume, labelmap) pairs from files, read through the library's
own readers, synthetic ones, and the catalogue of labelled structures training draws from.

``source`` is either a list file (one pair per line, ``IMAGE LABELMAP`` separated by a comma,
tab or spaces, paths relative to the list file; ``#`` starts a comment) or a folder holding
``images/`` and ``labels/`` with the same file names (DICOM series folders included).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..core.volume import same_grid
from ..errors import SegmentWithSAM2Error
from ..synthetic import synthetic_volume

# Seeds of held-out synthetic volumes, offset from a run's seed so they are never its training volumes.
VALIDATION_SEED_OFFSET = 10_000  # validation during training
HELD_OUT_SEED_OFFSET = 20_000  # evaluation cases, and the clips the feature rescaling measures on


def read_pairs(source, keep_labels=None) -> list[tuple]:
    """[(Volume, labels array [k, j, i])], each labelmap checked to lie on its image's grid;
    with ``keep_labels`` (label values) every other label becomes background."""
    from ..io.volume_files import read_volume

    pairs = []
    for image_path, label_path in _pair_paths(Path(source)):
        volume, labels = read_volume(image_path), read_volume(label_path)
        if not same_grid(labels, volume):
            raise SegmentWithSAM2Error(f"labelmap {label_path} is not on the grid of {image_path}; resample it first")
        array = np.asarray(labels.array).astype(np.uint16)
        if keep_labels is not None:
            array = np.where(np.isin(array, list(keep_labels)), array, 0).astype(np.uint16)
        pairs.append((volume, array))
    if not pairs:
        raise SegmentWithSAM2Error(f"no (image, labelmap) pairs found in {source}")
    return pairs


def case_names(source) -> list[str]:
    """Each pair's name for tables: its image file name without the extension(s)."""
    return [image.name.split(".")[0] for image, _ in _pair_paths(Path(source))]


def _pair_paths(source: Path):
    if source.is_dir():
        images, labels = source / "images", source / "labels"
        if not images.is_dir() or not labels.is_dir():
            raise SegmentWithSAM2Error(f"{source} must hold images/ and labels/ with matching names, or be a list file")
        for image in sorted(images.iterdir()):
            label = labels / image.name
            if not label.exists():
                raise SegmentWithSAM2Error(f"no labelmap {label} for {image}")
            yield image, label
        return
    if not source.is_file():
        raise SegmentWithSAM2Error(f"training data {source} not found")
    for number, line in enumerate(source.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p for p in re.split(r"[,\t ]+", line) if p]
        if len(parts) != 2:
            raise SegmentWithSAM2Error(f"{source} line {number}: expected 'IMAGE LABELMAP', got {line!r}")
        yield source.parent / parts[0], source.parent / parts[1]


def parse_labels(text: str | None):
    """'37,38,71-78' -> {37, 38, 71, ..., 78}; None stays None (every label)."""
    if not text:
        return None
    values = set()
    for part in text.split(","):
        try:
            low, _, high = part.strip().partition("-")
            values.update(range(int(low), int(high or low) + 1))
        except ValueError as error:
            raise SegmentWithSAM2Error(f"label values: expected values and ranges like 37,38,71-78, got {text!r}") from error
    return values


def catalogue(pairs) -> list[tuple]:
    """(volume, labels, label values present); unlabelled volumes teach nothing."""
    items = []
    for volume, labels in pairs:
        values = np.unique(labels)
        if (values > 0).any():
            items.append((volume, labels, values[values > 0]))
    return items


def synthetic_pairs(rng, count: int, shapes=None) -> list[tuple]:
    """``count`` synthetic training volumes, CT and MR in turn, one or two objects each."""
    return [synthetic_volume(rng, objects=int(rng.integers(1, 3)), modality=("CT", "MR")[i % 2], shapes=shapes)
            for i in range(count)]


def held_out_synthetic(seed: int, shapes=None) -> list[tuple]:
    """Six held-out synthetic volumes (never a run's training volumes), each scored on its last label."""
    held_out = np.random.default_rng(seed + VALIDATION_SEED_OFFSET)
    synthetic = [synthetic_volume(held_out, (32, 96, 96), objects=1, modality=m, shapes=shapes) for m in ("CT", "MR") * 3]
    return [(volume, labels, [int(np.max(labels))]) for volume, labels in synthetic]
