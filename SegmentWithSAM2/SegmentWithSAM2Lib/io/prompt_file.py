"""The prompt file (JSON): read, checked, and mask prompts loaded from labelmap files."""

from __future__ import annotations

import json
from pathlib import Path


from ..core.volume import Volume, same_grid
from ..errors import SegmentWithSAM2Error


def read_prompt_file(path, volume: Volume) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SegmentWithSAM2Error(f"prompt file not found: {path}")
    try:
        prompts = json.loads(path.read_text(encoding="utf-8-sig"))  # Windows editors may add a BOM
    except json.JSONDecodeError as error:
        raise SegmentWithSAM2Error(
            f"prompt file {path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})") from error
    except UnicodeDecodeError as error:
        raise SegmentWithSAM2Error(f"prompt file {path} is not UTF-8 text") from error
    if not isinstance(prompts, dict):
        raise SegmentWithSAM2Error(f"prompt file {path} must hold a JSON object with 'space' and 'objects'")
    if not isinstance(prompts.get("objects", []), list):
        raise SegmentWithSAM2Error(f"prompt file {path}: 'objects' must be a list of objects [{{...}}, ...]")
    for obj in prompts.get("objects") or []:
        if isinstance(obj, dict) and isinstance(obj.get("masks"), list):
            obj["masks"] = [_load_mask(item, path.parent, volume) for item in obj["masks"]]
    return prompts


def _load_mask(item, folder: Path, volume: Volume) -> dict:
    """``{"file": labelmap, "label": 1, "slice": s}`` -> ``{"mask": bool array, "slice": s}``."""
    from .volume_files import read_volume

    if not isinstance(item, dict) or "file" not in item or "slice" not in item:
        raise SegmentWithSAM2Error("a mask prompt needs 'file' (a labelmap on the image's grid) and 'slice'")
    label = item.get("label", 1)
    if isinstance(label, float) and label.is_integer():
        label = int(label)
    if isinstance(label, bool) or not isinstance(label, int) or label < 1:
        raise SegmentWithSAM2Error(f"mask file {item['file']}: 'label' must be the integer label value (1 or more; "
                                   f"0 is the background) of the structure to use, got {label!r}")
    unknown = set(item) - {"file", "label", "slice"}
    if unknown:
        raise SegmentWithSAM2Error(f"mask file {item['file']}: unknown key(s) {sorted(unknown)} (known: file, label, slice)")
    labelmap = read_volume(folder / item["file"])
    if not same_grid(labelmap, volume):
        raise SegmentWithSAM2Error(f"mask file {item['file']} is not on the image's voxel grid; resample it first")
    return {"mask": labelmap.array == label, "slice": item["slice"]}
