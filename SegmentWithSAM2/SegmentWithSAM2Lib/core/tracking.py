"""One propagation pass on sam2's video predictor, fed from our in-memory frames.

A pass builds its own fresh inference state (no memories from any other pass), conditions it
on every prompted slice of every object, and yields per-slice mask logits at frame resolution.
The state is sam2's ``init_state`` dictionary built without its file loader.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict

import numpy as np
import torch
from sam2 import sam2_video_predictor
from scipy import ndimage

from .prompts import ObjectInputs


def new_state(frames, frame_size: int, device: torch.device) -> dict:
    """sam2's inference state for ``frames`` (same keys as ``init_state``; no files, no warm-up)."""
    return {
        "images": frames, "num_frames": len(frames),
        "offload_video_to_cpu": True, "offload_state_to_cpu": False,
        "video_height": frame_size, "video_width": frame_size,
        "device": device, "storage_device": device,
        "point_inputs_per_obj": {}, "mask_inputs_per_obj": {},
        "cached_features": {}, "constants": {},
        "obj_id_to_idx": OrderedDict(), "obj_idx_to_id": OrderedDict(), "obj_ids": [],
        "output_dict_per_obj": {}, "temp_output_dict_per_obj": {}, "frames_tracked_per_obj": {},
    }


def condition(predictor, state: dict, objects: list[ObjectInputs], earlier: dict | None = None) -> None:
    """Add every object's prompts; each prompted slice becomes a conditioning frame.

    ``earlier`` maps (label, slice) to low-resolution logits of an earlier result: clicks on such
    a slice refine that mask, as clicks on an already segmented frame do in sam2's own
    interactive use (it feeds the frame's previous logits with the new points).
    Returns sam2's answer to the last prompt: (object ids, masks [objects, 1, S, S]) on its slice.
    """
    answer = None
    for obj in objects:
        for index, inputs in sorted(obj.slices.items()):
            if inputs.mask is not None:
                answer = predictor.add_new_mask(state, index, obj.label, inputs.mask)[1:]
                continue
            if earlier and (obj.label, index) in earlier:
                _seed_previous_logits(predictor, state, obj.label, index, earlier[(obj.label, index)])
            points = labels = None
            if inputs.points:
                points = np.asarray(inputs.points, dtype=np.float32)
                labels = np.asarray(inputs.labels, dtype=np.int32)
            answer = predictor.add_new_points_or_box(
                state, index, obj.label, points=points, labels=labels,
                box=None if inputs.box is None else np.asarray(inputs.box, dtype=np.float32))[1:]
    return answer


def _seed_previous_logits(predictor, state, label, index, logits):
    # sam2 looks for the frame's previous output in the temporary outputs first and uses its
    # "pred_masks" as the mask input next to the clicks; the entry is then replaced by the new output
    obj_idx = predictor._obj_id_to_idx(state, label)
    state["temp_output_dict_per_obj"][obj_idx]["cond_frame_outputs"][index] = {"pred_masks": logits}


def low_res_logits(state: dict, index: int) -> list:
    """Per object, sam2's low-resolution mask logits [1, 1, h, w] on a tracked slice (on the CPU)."""
    found = []
    for outputs in state["output_dict_per_obj"].values():
        out = outputs["cond_frame_outputs"].get(index) or outputs["non_cond_frame_outputs"].get(index)
        found.append(None if out is None else out["pred_masks"].detach().float().cpu())
    return found


def track(predictor, state: dict, start: int, stop: int):
    """Yield (slice, logits[objects, S, S], present[objects]) from ``start`` to ``stop`` inclusive."""
    reverse = stop < start
    if reverse and start == 0:  # sam2 skips a reverse pass that starts at frame 0
        reverse = False
    frames = predictor.propagate_in_video(
        state, start_frame_idx=start, max_frame_num_to_track=abs(start - stop), reverse=reverse)
    with _quiet_sam2_progress():  # we report progress ourselves, per slice
        for index, _, masks in frames:
            logits = masks[:, 0].float()
            # present: sam2 scores the object as there and its mask is not empty (a model may keep
            # a positive score past an object's end while its mask is already gone)
            shown = (logits > 0).flatten(1).any(1).cpu().numpy()
            yield index, logits, _present(state, index) & shown


@contextlib.contextmanager
def _quiet_sam2_progress():
    module = sam2_video_predictor
    original = module.tqdm
    module.tqdm = lambda iterable, **_: iterable
    try:
        yield
    finally:
        module.tqdm = original


def _present(state: dict, index: int) -> np.ndarray:
    """Whether sam2 judges each object present on a slice (object score logit > 0)."""
    present = []
    for outputs in state["output_dict_per_obj"].values():
        out = outputs["cond_frame_outputs"].get(index) or outputs["non_cond_frame_outputs"].get(index)
        present.append(bool(out is not None and (out["object_score_logits"] > 0).any()))
    return np.asarray(present)


HOLE_SCORE = 0.1  # the logit sam2 gives a filled hole (sam2.utils.misc.fill_holes_in_mask_scores)


def fill_holes_in_mask_scores(mask: torch.Tensor, max_area: int) -> torch.Tensor:
    """sam2's hole filling of low-resolution mask logits [N, 1, h, w] without its CUDA extension:
    background components (logit <= 0, 8-connected, as its kernel labels them) of at most
    ``max_area`` pixels get the logit 0.1."""
    background = (mask <= 0).cpu().numpy()[:, 0]
    holes = np.zeros_like(background)
    for n, plane in enumerate(background):
        labels, count = ndimage.label(plane, structure=np.ones((3, 3), dtype=bool))
        areas = np.bincount(labels.ravel(), minlength=count + 1)
        small = areas <= max_area
        small[0] = False
        holes[n] = small[labels]
    return torch.where(torch.from_numpy(holes[:, None]).to(mask.device), HOLE_SCORE, mask)


@contextlib.contextmanager
def filling_holes(predictor, max_area: int):
    """sam2's own hole filling (``fill_hole_area``, on in its default video predictor, skipped
    without the CUDA extension) at the point sam2 applies it: each frame's low-resolution logits
    after its memory is encoded.  Our CPU labelling stands in for the kernel, so the CPU and a GPU
    give the same masks.  Off (0) unless asked for: our default cleans masks at full resolution."""
    if not max_area:
        yield
        return
    module = sam2_video_predictor
    before = predictor.fill_hole_area, module.fill_holes_in_mask_scores
    predictor.fill_hole_area, module.fill_holes_in_mask_scores = int(max_area), fill_holes_in_mask_scores
    try:
        yield
    finally:
        predictor.fill_hole_area, module.fill_holes_in_mask_scores = before
