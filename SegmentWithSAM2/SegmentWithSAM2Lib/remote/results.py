"""A ``SegmentationResult`` as a result message and back, so the Python client returns what the
local ``segment`` returns: the labelmap, the placed objects (their prompts in frame pixels),
settings, slice counts and the engine's warnings.  sam2's low-resolution logits stay on the
server: corrections of a remote result run where they can use them."""

from __future__ import annotations

import numpy as np
import torch

from ..core.engine import SegmentationResult
from ..core.prompts import ObjectInputs, SliceInputs
from ..core.volume import Volume
from .wire import pack_mask, pack_region, unpack_mask


def result_message(result: SegmentationResult, before: np.ndarray | None, warned: list[str]) -> dict:
    settings = dict(result.settings, voxels={str(k): v for k, v in result.settings.get("voxels", {}).items()})
    return {"type": "result", **pack_region(result.labelmap, before), "objects": [_object(o) for o in result.objects],
            "slices_processed": result.slices_processed, "seconds": result.seconds, "cancelled": result.cancelled,
            "settings": settings, "reached": result.reached, "warnings": warned}


def read_result(message: dict, volume: Volume, labelmap: np.ndarray) -> SegmentationResult:
    """The result a message describes, with the labelmap its region rebuilt (``wire.apply_region``)."""
    settings = dict(message["settings"])
    settings["voxels"] = {int(k): v for k, v in settings.get("voxels", {}).items()}
    return SegmentationResult(labelmap, [_read_object(o) for o in message["objects"]],
                              dict(message["slices_processed"]), float(message["seconds"]), volume,
                              bool(message["cancelled"]), settings, {}, dict(message["reached"]))


def _object(obj: ObjectInputs) -> dict:
    return {"name": obj.name, "label": obj.label, "color": list(obj.color), "terminology": obj.terminology,
            "slices": {str(k): _slice(v) for k, v in obj.slices.items()}}


def _slice(inputs: SliceInputs) -> dict:
    mask = None if inputs.mask is None else pack_mask(inputs.mask.cpu().numpy())
    return {"points": [list(p) for p in inputs.points], "labels": list(inputs.labels),
            "box": None if inputs.box is None else list(inputs.box), "mask": mask}


def _read_object(item: dict) -> ObjectInputs:
    return ObjectInputs(item["name"], int(item["label"]), tuple(item["color"]),
                        {int(k): _read_slice(v) for k, v in item["slices"].items()}, item["terminology"])


def _read_slice(item: dict) -> SliceInputs:
    mask = item["mask"]
    mask = None if mask is None else torch.from_numpy(unpack_mask(mask, tuple(mask["shape"])))
    return SliceInputs([tuple(p) for p in item["points"]], list(item["labels"]),
                       None if item["box"] is None else tuple(item["box"]), mask)
