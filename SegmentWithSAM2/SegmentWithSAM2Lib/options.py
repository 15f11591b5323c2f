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
PRESETS = ("none", "medsam2")
MEDSAM2_HOLE_PX = 8  # the hole area sam2's build_sam2_video_predictor fills, which MedSAM2's scripts use


def look_up(value, choices, what: str) -> str:
    """``value`` if it is one of ``choices``; otherwise an error naming them (and the nearest)."""
    if value in choices:
        return value
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise SegmentWithSAM2Error(f"unknown {what} {value!r}{hint} (use one of {', '.join(map(str, choices))})")


def preset_settings(preset, window, auto_stop, postprocess: bool, keep_largest_component: bool = False,
                    fill_holes_px: int = 0) -> dict:
    """The run's settings once a preset is applied: ``medsam2`` is MedSAM2's published CT pipeline
    (its 8-bit intensity path over ``window``, both directions from the prompted slice, no
    clean-up but its largest 3D component, sam2's hole filling, and no automatic stop unless
    ``auto_stop`` is given).  ``auto_stop`` None: the preset's default."""
    preset = look_up(preset or "none", PRESETS, "preset")
    if preset == "medsam2":
        window = window if str(window).lower().startswith("medsam2") else f"medsam2:{window}"
        return {"preset": preset, "window": window, "auto_stop": bool(auto_stop), "postprocess": False,
                "keep_largest_component": True, "fill_holes_px": MEDSAM2_HOLE_PX}
    return {"preset": preset, "window": window, "auto_stop": True if auto_stop is None else bool(auto_stop),
            "postprocess": postprocess, "keep_largest_component": keep_largest_component,
            "fill_holes_px": int(fill_holes_px)}
