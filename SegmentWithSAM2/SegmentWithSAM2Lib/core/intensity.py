"""One intensity mapping (voxel value -> 0..255) for the whole volume, never per slice.

``resolve_window`` turns a user choice into a ``Window``:

- ``CENTER,WIDTH`` (e.g. ``40,400``) or a named preset (``CT_PRESETS``);
- ``mr`` / ``percentile`` (0.5-99.5 % of the finite voxels) or ``percentile:LOW,HIGH``;
- ``none``: values are used as they are, clipped to 0..255;
- ``auto``: the DICOM window tags when the volume has them; otherwise by modality: CT ->
  ``soft-tissue`` (40,400), PET -> 0 .. 99.5th percentile, MR and anything else -> percentiles.
  Without a modality tag a volume whose minimum is below -500 is taken as CT (Hounsfield units).
- ``medsam2`` or ``medsam2:CHOICE`` (any choice above; ``medsam2`` alone: ``auto``): MedSAM2's
  published CT path: clip to that window, rescale the clipped volume's own minimum..maximum to
  0..255 and truncate to 8 bits, in numpy's arithmetic for the voxels' type (float64 for integer
  voxels), as its scripts do.  Not the default: the truncation loses up to one grey level.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import Remedy, SegmentWithSAM2Error

# (center, width) in HU; the same values as Slicer's CT display presets where it has one.
CT_PRESETS = {
    "soft-tissue": (40.0, 400.0),
    "abdomen": (40.0, 350.0),
    "mediastinum": (50.0, 350.0),
    "liver": (60.0, 160.0),
    "lung": (-500.0, 1400.0),
    "bone": (400.0, 1000.0),
    "brain": (50.0, 100.0),
}
DEFAULT_PERCENTILES = (0.5, 99.5)
# Percentiles of very large volumes are taken on an evenly strided sample of this many voxels.
_PERCENTILE_SAMPLE = 8_000_000


@dataclass(frozen=True)
class Window:
    lower: float
    upper: float
    source: str  # how it was chosen, for provenance ("preset lung", "DICOM tags", ...)
    eight_bit: bool = False  # MedSAM2's path: lower..upper are the clipped volume's extremes, then truncated


    @property
    def center_width(self) -> tuple[float, float]:
        return (self.lower + self.upper) / 2, self.upper - self.lower

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Map values to float32 0..255 (a new array; the input is never modified)."""
        if self.eight_bit:
            return _eight_bit(np.asarray(values), self.lower, self.upper)
        values = np.asarray(values, dtype=np.float32)
        scale = 255.0 / (self.upper - self.lower)
        out = (values - np.float32(self.lower)) * np.float32(scale)
        np.clip(out, 0.0, 255.0, out=out)
        out[~np.isfinite(values)] = 0.0  # NaN/Inf -> the window's lower bound
        return out


def resolve_window(choice: str, array: np.ndarray, metadata: dict | None = None) -> Window:
    if not isinstance(choice, str):
        raise SegmentWithSAM2Error(f"window must be text such as auto, none, mr, 40,400 or a preset, got {choice!r}")
    metadata = metadata or {}
    _check_values(array)
    text = str(choice).strip().lower()
    if text == "medsam2" or text.startswith("medsam2:"):
        inner = resolve_window(str(choice).strip()[8:] or "auto", array, metadata)
        return _medsam2_window(array, inner)
    if text == "none":
        return Window(0.0, 255.0, "none")
    if text in CT_PRESETS:
        return _from_center_width(*CT_PRESETS[text], f"preset {text}")
    if text in ("mr", "percentile"):
        return _percentile_window(array, DEFAULT_PERCENTILES)
    if text.startswith("percentile:"):
        return _percentile_window(array, _parse_pair(text.split(":", 1)[1], choice))
    if text == "auto":
        return _auto_window(array, metadata)
    if "," in text:
        return _from_center_width(*_parse_pair(text, choice), "center,width")
    raise SegmentWithSAM2Error(
        f"unknown window {choice!r}; use auto, none, mr, percentile[:LOW,HIGH], CENTER,WIDTH "
        f"or a preset: {', '.join(CT_PRESETS)}")


def _medsam2_window(array, inner: Window) -> Window:
    """The clipped volume's extremes, in the arithmetic type the voxels give (see ``_eight_bit``)."""
    work = _work_type(array)
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
    clipped_min = max(work.type(inner.lower), work.type(finite.min()))
    clipped_max = min(work.type(inner.upper), work.type(finite.max()))
    if not clipped_max > clipped_min:
        raise SegmentWithSAM2Error(f"the volume holds one value inside the window {inner.lower:g}..{inner.upper:g}; "
                                   "choose a window that covers the structure", Remedy("give_window"))
    return Window(float(clipped_min), float(clipped_max),
                  f"medsam2: clipped to {inner.lower:g}..{inner.upper:g} ({inner.source}), 8-bit", eight_bit=True)


def _work_type(array) -> np.dtype:
    # numpy's own promotion in MedSAM2's `(clip(x) - min) / (max - min) * 255.0`: an integer volume
    # clipped with float bounds becomes float64; a float volume keeps its type
    return np.dtype(array.dtype) if np.dtype(array.dtype).kind == "f" else np.dtype(np.float64)


def _eight_bit(values: np.ndarray, lower: float, upper: float) -> np.ndarray:
    work = _work_type(values)
    low, high = work.type(lower), work.type(upper)
    clipped = np.clip(values.astype(work, copy=False), low, high)
    scaled = (clipped - low) / (high - low) * work.type(255.0)
    out = np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0).astype(np.uint8)  # truncation, as np.uint8()
    return out.astype(np.float32)


def _auto_window(array, metadata) -> Window:
    tags = metadata.get("window")
    if tags:
        return _from_center_width(float(tags[0]), float(tags[1]), "DICOM window tags")
    modality = str(metadata.get("modality", "")).upper()
    if modality == "CT" or (not modality and _looks_like_hounsfield(array)):
        return _from_center_width(*CT_PRESETS["soft-tissue"], "auto: CT soft-tissue preset")
    if modality in ("PT", "PET"):
        upper = _percentiles(array, (DEFAULT_PERCENTILES[1],))[0]
        return _checked(0.0, upper, "auto: PET 0 to 99.5th percentile")
    low, high = _percentiles(array, DEFAULT_PERCENTILES)
    return _checked(low, high, "auto: 0.5-99.5th percentiles")


def _percentile_window(array, pair) -> Window:
    low_q, high_q = pair
    if not 0 <= low_q < high_q <= 100:
        raise SegmentWithSAM2Error(f"percentiles must satisfy 0 <= LOW < HIGH <= 100, got {pair}")
    low, high = _percentiles(array, pair)
    return _checked(low, high, f"percentiles {low_q:g}-{high_q:g}")


def _percentiles(array, qs) -> np.ndarray:
    flat = array.reshape(-1)
    step = max(1, flat.size // _PERCENTILE_SAMPLE)
    sample = flat[::step].astype(np.float64)
    sample = sample[np.isfinite(sample)]
    return np.percentile(sample, qs)


def _from_center_width(center, width, source) -> Window:
    if not (np.isfinite(center) and np.isfinite(width)):
        raise SegmentWithSAM2Error(f"window centre and width must be finite numbers, got {center:g},{width:g}")
    if not width > 0:
        raise SegmentWithSAM2Error(f"window width must be positive, got {width:g}")
    return Window(center - width / 2, center + width / 2, source)


def _checked(lower, upper, source) -> Window:
    if not upper > lower:
        raise SegmentWithSAM2Error(
            f"the {source} window is empty ({lower:g}..{upper:g}): most voxels share one value", Remedy("give_window"))
    return Window(float(lower), float(upper), source)


def _parse_pair(text, original):
    try:
        a, b = (float(x) for x in text.split(","))
    except ValueError as error:
        raise SegmentWithSAM2Error(f"cannot read window {original!r}; expected two numbers like 40,400") from error
    return a, b


def _looks_like_hounsfield(array) -> bool:
    if not np.issubdtype(array.dtype, np.number):
        return False
    if not np.issubdtype(array.dtype, np.floating):
        return bool(array.min() < -500)
    # -inf (a fill value) must not make MR data look like CT: only finite voxels count
    return bool(np.min(array, where=np.isfinite(array), initial=np.inf) < -500)


def _check_values(array) -> None:
    """Refuse volumes with nothing to segment; warn about NaN/Inf (shown at the lower bound)."""
    bad = ~np.isfinite(array) if np.issubdtype(array.dtype, np.floating) else None
    finite = array
    if bad is not None and bad.any():
        warnings.warn(f"{int(bad.sum())} NaN/Inf voxels are shown at the window's lower bound", stacklevel=3)
        finite = array[~bad]
    if finite.size == 0:
        raise SegmentWithSAM2Error("the volume has no finite voxel values")
    if finite.min() == finite.max():
        raise SegmentWithSAM2Error(
            f"the volume is constant (every voxel is {finite.min().item()!r}); there is nothing to segment")
