"""Segment a volume node into a segmentation node: the function behind the Slicer Logic.

Everything that can fail (prompts, geometry, model, propagation, cancel) happens before the
scene is touched, so a failed or cancelled run leaves the scene and earlier segments as they were.
"""

from __future__ import annotations

import datetime

from ..version import __version__
from ..core.geometry import span_from
from ..options import STOP_AFTER
from .markups import object_prompts
from .segments import NEW_SEGMENT_COLOR, write_segment
from .volumes import volume_from_node


def display_window(volume_node) -> tuple[float, float] | None:
    """The (center, width) the volume is shown with in Slicer, the default window for a run."""
    display = volume_node.GetDisplayNode() if volume_node is not None else None
    if display is None or not display.IsA("vtkMRMLScalarVolumeDisplayNode") or display.GetWindow() <= 0:
        return None
    return float(display.GetLevel()), float(display.GetWindow())


def segment_volume_node(model, volume_node, segmentation_node, prompts, *, window="display", axis="auto",
                        direction="both", slice_range=None, auto_stop=True, postprocess=True,
                        segment_ids=None, overlap="overwrite", on_progress=None, should_cancel=None) -> list[str]:
    """Propagate ``prompts`` (prompt-file structure, RAS world) and write one segment per object.

    ``window="display"`` uses the volume's display window/level; ``segment_ids`` maps object
    labels to existing segments to replace (others get new segments).  Returns the segment ids.
    The three steps are separate so that the Slicer module runs ``run_engine`` on its worker
    thread and the other two on the main thread.
    """
    volume, window = read_inputs(volume_node, window)
    result = run_engine(model, volume, prompts, window=window, axis=axis, direction=direction,
                        slice_range=slice_range, auto_stop=auto_stop, postprocess=postprocess,
                        on_progress=on_progress, should_cancel=should_cancel)
    return write_segments(result, volume_node, segmentation_node, prompts, segment_ids, overlap)


def read_inputs(volume_node, window="display"):
    """(core volume, window choice) from the scene; main thread."""
    volume = volume_from_node(volume_node)
    if window == "display":
        shown = display_window(volume_node)
        window = f"{shown[0]},{shown[1]}" if shown else "auto"
    return volume, window


def run_engine(model, volume, prompts, *, window, axis="auto", direction="both", slice_range=None,
               auto_stop=True, postprocess=True, keep_largest_component=False, fill_holes_px=0,
               on_progress=None, should_cancel=None, previous=None,
               preview_slice=None, from_slice=None, session=None):
    """The model work; touches no MRML node, so it may run on a worker thread.  ``previous``: the
    last result on the same volume, window and axis; changed prompts then correct its masks.
    ``preview_slice``: only that slice, from its own prompts.  ``from_slice`` (with ``previous``):
    re-propagate from that slice away from the earlier prompts, keeping the rest.  ``session``: a
    VolumeSession of the same volume, window and axis whose cached slice features are reused."""
    # here, not at the top: the rest of this module serves runs on a server, in a Python without torch
    from ..core.engine import PropagationOptions, VolumeSession
    from ..core.postprocess import PostProcess

    session = session or VolumeSession(model, volume, axis=axis, window=window)
    if from_slice is not None and previous is not None:
        direction, slice_range = span_from(previous, from_slice, session.plan.num_slices)
    options = PropagationOptions(direction=direction, slice_range=slice_range, auto_stop=auto_stop,
                                 stop_after=STOP_AFTER, postprocess=PostProcess() if postprocess else None,
                                 keep_largest_component=keep_largest_component, fill_holes_px=fill_holes_px)
    if preview_slice is not None:
        return session.preview(prompts, preview_slice, options, previous=previous)
    return session.propagate(prompts, options, on_progress=on_progress, should_cancel=should_cancel,
                             previous=previous)


def write_segments(result, volume_node, segmentation_node, prompts, segment_ids=None, overlap="overwrite") -> list[str]:
    """One segment per object, with provenance; main thread."""
    tags = dict(result.settings, prompts=prompts_summary(prompts), version=__version__,
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    return [write_segment(segmentation_node, volume_node, result.volume, result.labelmap == obj.label,
                          name=obj.name, color=obj.color, segment_id=(segment_ids or {}).get(obj.label),
                          overlap=overlap, tags=tags)
            for obj in result.objects]


def slice_index_at(volume, axis, ras_point) -> int:
    """The slice (along ``axis``) through a world RAS point, e.g. a slice view's centre."""
    from ..core.geometry import plan_slices

    plan = plan_slices(volume, axis)
    s = plan.ijk_to_slice(volume.ras_to_ijk(ras_point))[0][0]
    return int(min(max(round(float(s)), 0), plan.num_slices - 1))


def prompts_from_nodes(name="SAM2 segment", label=1, color=NEW_SEGMENT_COLOR, positive=None, negative=None,
                       rois=(), masks=()) -> dict:
    """Markups nodes (and mask prompts from ``segment_as_mask_prompt``) as one object's prompts in world RAS."""
    return {"space": "RAS", "objects": [object_prompts(name, label, color, positive, negative, rois, masks)]}


def prompts_summary(prompts) -> list:
    """What was prompted, for provenance: per object its points, boxes and mask slices."""
    summary = []
    for obj in prompts.get("objects", []) if isinstance(prompts, dict) else []:
        summary.append({"name": obj.get("name"), "points": obj.get("points", []),
                        "boxes": obj.get("boxes", []), "mask_slices": [m.get("slice") for m in obj.get("masks", [])]})
    return summary
