"""The choice sets of the library's string options and its defaults, each defined once.

``look_up`` is the one validator: an unknown value is refused with the choices and, when one is
close, "did you mean ...".  The command line and the Slicer module list the same tuples.
"""

from __future__ import annotations

import difflib

from .errors import SegmentWithSAM2Error

DEFAULT_MODEL = "medsam2-latest"
SAMPLES = ("lung2", "phantom")  # demo samples: pyradiomics' lung CT (io.sample_data); the synthetic CT
# each sample's model, shipped in model_zoo/ so the demo segments for real on any machine: lite
# (LiteMedSAM's pretrained encoder and decoder) for the real CT, micro for the phantom it was made on
DEMO_MODELS = {"lung2": "lite", "phantom": "micro"}
STOP_AFTER = 3  # a direction ends after this many consecutive slices without the object

AXES = ("auto", "axial", "coronal", "sagittal", "i", "j", "k")
DIRECTIONS = ("both", "forward", "backward")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
OVERLAPS = ("overwrite", "keep_others")
SPACES = ("RAS", "LPS", "IJK")
SEG_TYPES = ("binary", "labelmap")  # DICOM-SEG segmentation types: BINARY (most viewers), LABELMAP (DICOM 2024)
TRAINING_MODES = ("lora", "full", "scratch")
PROTOCOLS = ("box", "point", "corrector")
BASELINES = ("region-growing", "litemedsam-slices", "none")  # evaluate's methods beside the model


def look_up(value, choices, what: str) -> str:
    """``value`` if it is one of ``choices``; otherwise an error naming them (and the nearest)."""
    if value in choices:
        return value
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise SegmentWithSAM2Error(f"unknown {what} {value!r}{hint} (use one of {', '.join(map(str, choices))})")
