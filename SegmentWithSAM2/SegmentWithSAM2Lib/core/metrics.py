"""The overlap measure and the standard prompt every evaluation in the project uses.

``middle_slice_box`` is the RECIST-like protocol of MedSAM2's papers: one box around the object
on the middle of the k-slices it spans (the upper of two middles when the span has an even
number of slices, as the demo has always used).
"""

from __future__ import annotations

import numpy as np


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """2|A and B| / (|A| + |B|) of two masks; 1.0 when both are empty."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else float(2.0 * np.logical_and(a, b).sum() / total)


def middle_slice(labels: np.ndarray, label: int) -> int:
    """The middle of the k-slices (labels are [k, j, i]) that hold ``label``."""
    ks = np.nonzero((labels == label).any(axis=(1, 2)))[0]
    if ks.size == 0:
        raise ValueError(f"label {label} is not in the labelmap")
    return int((ks.min() + ks.max() + 1) // 2)


def middle_slice_box(labels: np.ndarray, label: int = 1, name: str | None = None, color=None) -> dict:
    """An IJK prompt: the bounding box of ``label`` on its middle k-slice."""
    middle = middle_slice(labels, label)
    rows, cols = np.nonzero(labels[middle] == label)
    obj = {"label": int(label), "boxes": [{"corner1": [int(cols.min()), int(rows.min()), middle],
                                           "corner2": [int(cols.max()), int(rows.max()), middle]}]}
    obj.update({"name": name} if name else {}, **({"color": list(color)} if color else {}))
    return {"space": "IJK", "objects": [obj]}
