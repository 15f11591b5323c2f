"""The prompt structure's fields read strictly: unknown keys are refused (with "did you mean"),
booleans must be booleans, colours three numbers in 0..1, names printable text, slices whole
numbers.  A typo such as ``"postive": false`` would otherwise silently be a positive click."""

from __future__ import annotations

import difflib
import unicodedata
from numbers import Integral, Real

from ..errors import SegmentWithSAM2Error

TOP_KEYS = ("space", "objects", "description")
OBJECT_KEYS = ("name", "label", "color", "points", "boxes", "masks", "terminology")
# Slicer's TerminologyEntry: context~category~type~type modifier~anatomic context~region~region modifier
TERMINOLOGY_PARTS = ("contextName", "category", "type", "typeModifier", "anatomicContextName", "anatomicRegion",
                     "anatomicRegionModifier")
TISSUE = ["SCT", "85756007", "Tissue"]
DEFAULT_TERMINOLOGY = {"contextName": "Segmentation category and type - 3D Slicer General Anatomy list",
                       "category": TISSUE, "type": TISSUE}  # Slicer's own default for a new segment
_CODED_PARTS = ("category", "type", "typeModifier", "anatomicRegion", "anatomicRegionModifier")
POINT_KEYS = ("position", "positive")
BOX_KEYS = ("corner1", "corner2", "corners", "name")
MASK_KEYS = ("mask", "slice")


def check_keys(item: dict, allowed, what: str) -> None:
    for key in item:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SegmentWithSAM2Error(f"{what}: unknown key {key!r}{hint} (known: {', '.join(allowed)})")


def boolean(item: dict, key: str, default: bool, what: str) -> bool:
    value = item.get(key, default)
    if not isinstance(value, bool):
        raise SegmentWithSAM2Error(f"{what}: {key!r} must be true or false (a JSON boolean), got {value!r}")
    return value


def color(value, what: str) -> tuple:
    numbers = value if isinstance(value, (list, tuple)) else None
    if numbers is None or len(numbers) != 3 or not all(isinstance(c, Real) and not isinstance(c, bool)
                                                       and 0.0 <= c <= 1.0 for c in numbers):
        raise SegmentWithSAM2Error(f"{what}: 'color' must be three numbers from 0 to 1 (red, green, blue), got {value!r}")
    return tuple(float(c) for c in numbers)


def name(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SegmentWithSAM2Error(f"{what}: 'name' must be non-empty text, got {value!r}")
    control = [c for c in value if unicodedata.category(c)[0] == "C" or c in "\u2028\u2029"]
    if control:
        raise SegmentWithSAM2Error(f"{what}: the name {value!r} holds control characters "
                                   f"({', '.join(repr(c) for c in control)}); use printable text")
    return value


def whole_number(value, what: str) -> int:
    if isinstance(value, bool) or not (isinstance(value, Integral) or (isinstance(value, float) and value.is_integer())):
        raise SegmentWithSAM2Error(f"{what}: 'slice' must be a whole slice index, got {value!r}")
    return int(value)


def terminology(value, what: str) -> dict:
    """An object's terminology, given as Slicer's ``TerminologyEntry`` string or as codes
    ``{"category": [scheme, value, meaning], "type": [...], ...}``: a dict with TERMINOLOGY_PARTS
    keys (codes as [scheme, value, meaning]); category and type are required."""
    if isinstance(value, str):
        parts = value.split("~")
        value = {key: (part if key.endswith("Name") else part.split("^"))
                 for key, part in zip(TERMINOLOGY_PARTS, parts) if part.strip("^")}
    if not isinstance(value, dict):
        raise SegmentWithSAM2Error(f"{what}: 'terminology' must be a Slicer TerminologyEntry string or an object with "
                                   f"'category' and 'type' codes, got {value!r}")
    check_keys(value, TERMINOLOGY_PARTS, f"{what} terminology")
    for key in _CODED_PARTS:
        code = value.get(key)
        if code is None and key in ("category", "type"):
            raise SegmentWithSAM2Error(f"{what}: terminology needs '{key}' as [scheme, value, meaning], e.g. "
                                       "[\"SCT\", \"85756007\", \"Tissue\"]")
        if code is not None and not (isinstance(code, list) and len(code) == 3 and all(isinstance(c, str) and c
                                                                                         for c in code)):
            raise SegmentWithSAM2Error(f"{what}: terminology '{key}' must be three texts [scheme, value, meaning] "
                                       f"(e.g. SCT^10200004^Liver), got {code!r}")
    return {key: value[key] for key in TERMINOLOGY_PARTS if key in value}
