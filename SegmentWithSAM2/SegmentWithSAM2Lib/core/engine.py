"""The propagation engine: a session holds the model, the volume's frames and the geometry.

``propagate`` runs each direction on its own fresh sam2 state starting from the prompted slices
(forward from the lowest, backward from the highest), so neither direction attends to memories
from the other side.  Between prompted slices both passes run; each slice is written by the pass
whose last prompted slice is nearer (ties: forward).  Results go straight into a labelmap on the
input grid, slice by slice.

Objects prompted on the same slices share one state (sam2 batches them, as its own predictor
does); an object prompted on other slices gets passes of its own, from its own prompts.  In one
shared state sam2 would track it from another object's slice, before its own prompt, from a
memory many slices away.  Where objects of different groups claim the same voxel, the object
prompted nearer that slice keeps it (on a tie, the one written first): logits of separate states
are not comparable and the user's nearest prompt is the best evidence (with logits alone, the
bundled micro model's mask for one object spilled over the other and took all of it).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import Cancelled, EmptyResultWarning, SegmentWithSAM2Error
from ..options import STOP_AFTER
from .features import DEFAULT_BUDGET_MB, CachedState, FeatureCache, default_batch, default_host_budget
from .frames import FrameSequence, frame_normalization
from .geometry import plan_slices, span_from  # noqa: F401  (span_from: part of the engine's API)
from .inplane import InPlaneMap
from .intensity import Window, resolve_window
from .model import LoadedModel
from .passes import Group, Run, by_prompted_slices, passes_for
from .postprocess import PostProcess, keep_largest_components
from .prompts import ObjectInputs, place_prompts
from .tracking import condition, filling_holes, new_state
from .volume import Volume, same_grid


@dataclass
class PropagationOptions:
    direction: str = "both"
    slice_range: tuple[int, int] | None = None  # first, last slice index (inclusive)
    auto_stop: bool = True
    stop_after: int = STOP_AFTER  # a direction ends after this many consecutive slices without the object
    postprocess: PostProcess | None = field(default_factory=PostProcess)
    keep_largest_component: bool = False  # per object, its largest 3D (26-connected) component only
    fill_holes_px: int = 0  # sam2's hole filling of low-res masks up to this area (its GPU default: 8)


@dataclass
class SegmentationResult:
    labelmap: np.ndarray  # [k, j, i], the input grid
    objects: list[ObjectInputs]
    slices_processed: dict  # direction -> number of slices run through the model
    seconds: float
    volume: Volume
    cancelled: bool = False
    settings: dict = field(default_factory=dict)
    low_res: dict = field(default_factory=dict)  # (label, slice) -> sam2's low-resolution logits, for corrections
    reached: dict = field(default_factory=dict)  # direction -> the last slice (view index) it ran through


class VolumeSession:
    def __init__(self, model: LoadedModel, volume: Volume, axis: str = "auto", window="auto",
                 feature_budget_mb: float = DEFAULT_BUDGET_MB, encode_batch: int | None = None,
                 host_budget_mb: float | None = None):
        self.model, self.volume = model, volume
        # on a GPU, features past the device budget wait in host memory rather than being recomputed
        host = default_host_budget(model.device) if host_budget_mb is None else host_budget_mb
        self.features = FeatureCache(feature_budget_mb, host)
        # slices encoded per batch ahead of a pass (0: one at a time, as sam2 does)
        self.encode_batch = default_batch(model.device) if encode_batch is None else int(encode_batch)
        self.plan = plan_slices(volume, axis)
        self.window = window if isinstance(window, Window) else resolve_window(window, volume.array, volume.metadata)
        self.inplane = InPlaneMap.fit(self.plan.slice_shape, self.plan.pixel_spacing, model.image_size)
        self.frames = FrameSequence(volume.array, self.plan, self.window, self.inplane,
                                    frame_normalization(model.predictor))

    def place(self, prompts: dict) -> list[ObjectInputs]:
        return place_prompts(prompts, self.volume, self.plan, self.inplane)

    def propagate(self, prompts, options: PropagationOptions | None = None, on_progress=None,
                  should_cancel=None, keep_partial=False, previous: SegmentationResult | None = None
                  ) -> SegmentationResult:
        """Segment the volume from ``prompts`` (a prompt dict or placed objects).

        With ``previous`` (an earlier result of this session), prompts that are new or changed on
        a slice correct that slice's earlier mask instead of starting from nothing: a negative
        click removes a leak there, a positive click adds a missed part.  With ``previous`` and a
        range, only the range is re-propagated (from the prompts inside it) and every slice
        outside keeps its earlier mask: "re-propagate from this slice" after a correction.
        """
        options = options or PropagationOptions()
        if options.stop_after < 1:
            raise SegmentWithSAM2Error(f"stop_after must be at least 1 (empty slices before a direction stops), "
                                       f"got {options.stop_after}")
        self._check_previous(previous)
        objects = prompts if isinstance(prompts, list) else self.place(prompts)
        first, last = self._range(options.slice_range)
        if previous is not None and options.slice_range is not None:
            objects = _within(objects, first, last)
        earlier = _corrected_slices(objects, previous)
        _check_starts(objects, earlier)
        anchors = sorted({s for obj in objects for s in obj.slices})
        if anchors[0] < first or anchors[-1] > last:
            raise SegmentWithSAM2Error(f"prompted slices {anchors} lie outside the range {first}:{last}")
        groups = [Group(members, passes_for(options.direction, sorted(slices), first, last))
                  for slices, members in by_prompted_slices(objects).items()]
        labelmap = self._start_labelmap(objects, previous if options.slice_range is not None else None, first, last)
        run = Run(self, groups, options, labelmap, on_progress, should_cancel, earlier)
        if previous is not None and options.slice_range is not None:
            run.low_res.update({key: value for key, value in previous.low_res.items() if not first <= key[1] <= last})
        started = time.perf_counter()
        try:
            with filling_holes(self.model.predictor, options.fill_holes_px):
                run.all_passes()
        except Cancelled:
            if not keep_partial:
                raise
            return self._result(labelmap, objects, run, started, options, cancelled=True)
        if options.keep_largest_component:
            keep_largest_components(labelmap, [o.label for o in objects])
        return self._result(labelmap, objects, run, started, options)

    def _start_labelmap(self, objects, previous, first, last) -> np.ndarray:
        """Zeros, or the earlier result with the range cleared (it is about to be recomputed)."""
        labels = [o.label for o in objects] + ([int(previous.labelmap.max())] if previous is not None else [])
        labelmap = np.zeros(self.volume.array.shape, dtype=np.uint8 if max(labels) < 256 else np.uint16)
        if previous is not None:  # objects not re-run keep their masks in the range too
            labelmap[...] = previous.labelmap
            span = self.plan.view_of(labelmap)[first:last + 1]
            span[np.isin(span, [o.label for o in objects])] = 0
        return labelmap

    def preview(self, prompts, index: int, options: PropagationOptions | None = None,
                previous: SegmentationResult | None = None) -> SegmentationResult:
        """The masks on slice ``index`` from that slice's prompts alone (prompts elsewhere are left
        out), without propagation or memory encoding; with the slice's features cached this is
        only sam2's prompt encoder and mask decoder.  Same masks as a propagation over that one slice."""
        options = dataclasses.replace(options or PropagationOptions(), slice_range=(index, index))
        self._check_previous(previous)
        placed = prompts if isinstance(prompts, list) else self.place(prompts)
        objects = _on_slice(placed, index)
        earlier = _corrected_slices(objects, previous)
        _check_starts(objects, earlier)  # a negative click alone corrects an earlier mask
        labelmap = self._start_labelmap(objects, None, index, index)
        group = Group(objects, [("preview", index, index)])
        run = Run(self, [group], options, labelmap, None, None, earlier)
        started = time.perf_counter()
        with torch.inference_mode(), self.model.autocast(), filling_holes(self.model.predictor, options.fill_holes_px):
            state = CachedState(new_state(self.frames, self.model.image_size, self.model.device), self.features)
            object_ids, masks = condition(self.model.predictor, state, objects, earlier)
            order = [object_ids.index(label) for label in group.labels]
            run.write(group, index, masks[order, 0].float())
        run.processed["preview"] = 1
        if options.keep_largest_component:
            keep_largest_components(labelmap, [o.label for o in objects])
        # counted on the slice alone: it is all a preview writes (a volume's bincount is ~15 ms at 512 x 512)
        return self._result(labelmap, objects, run, started, options, counted=self.plan.view_of(labelmap)[index])

    def _check_previous(self, previous) -> None:
        """A correction refines a result of this volume on this grid, axis and window only."""
        if previous is None:
            return
        if previous.labelmap.shape != self.volume.array.shape or not same_grid(previous.volume, self.volume):
            raise SegmentWithSAM2Error(f"the previous result is of another volume (shape {previous.labelmap.shape}, "
                                       f"this one {self.volume.array.shape}); correct a result of this volume")
        window = [self.window.lower, self.window.upper, self.window.source]
        if previous.settings.get("axis") != self.plan.view or previous.settings.get("window") != window:
            raise SegmentWithSAM2Error("the previous result was made with another slice axis or window; correct it "
                                       "with the axis and window it was made with")

    def _range(self, slice_range) -> tuple[int, int]:
        count = self.plan.num_slices
        first, last = slice_range if slice_range is not None else (0, count - 1)
        if not 0 <= first <= last < count:
            raise SegmentWithSAM2Error(f"range {first}:{last} is not within slices 0:{count - 1}")
        return int(first), int(last)

    def _result(self, labelmap, objects, run, started, options, cancelled=False, counted=None) -> SegmentationResult:
        settings = {"model": self.model.model_id, "weights": self.model.weights, "precision": self.model.precision,
                    "window": [self.window.lower, self.window.upper, self.window.source],
                    "axis": self.plan.view, "slice_axis": "ijk"[self.plan.slice_axis],
                    "direction": options.direction, "range": list(self._range(options.slice_range)),
                    "auto_stop": options.auto_stop, "postprocess": options.postprocess is not None,
                    "keep_largest_component": options.keep_largest_component, "fill_holes_px": options.fill_holes_px,
                    **(_outcome(labelmap, objects) if counted is None else _outcome(counted, objects, "slice"))}
        return SegmentationResult(labelmap, objects, dict(run.processed), time.perf_counter() - started,
                                  self.volume, cancelled, settings, run.low_res, dict(run.reached))


MOST_OF_THE_VOLUME = 0.5  # an object this large has almost surely not been found, but flooded


def _outcome(labelmap: np.ndarray, objects, where: str = "volume") -> dict:
    """Voxels per object label, the labels left empty, and a warning for each surprise: an object
    empty on every slice, a wholly empty result, an object covering most of the volume."""
    counts = np.bincount(labelmap.ravel(), minlength=max(o.label for o in objects) + 1)
    voxels = {o.label: int(counts[o.label]) for o in objects}
    empty = [o for o in objects if voxels[o.label] == 0]
    if len(empty) == len(objects):
        warnings.warn("the result is empty: no object was segmented on any slice; check the prompts and the window",
                      EmptyResultWarning, stacklevel=4)
    else:
        for o in empty:
            warnings.warn(f"object {o.name!r} (label {o.label}) is empty on every slice", EmptyResultWarning, stacklevel=4)
    for o in objects:
        if voxels[o.label] > MOST_OF_THE_VOLUME * labelmap.size:
            warnings.warn(f"object {o.name!r} covers {100 * voxels[o.label] / labelmap.size:.0f} % of the {where}: "
                          "the model probably did not find its edges; check the window and the prompts",
                          EmptyResultWarning, stacklevel=4)
    return {"voxels": voxels, "empty_objects": [o.label for o in empty]}


def _within(objects, first: int, last: int) -> list[ObjectInputs]:
    """Each object's prompts inside first..last; objects with none there are left as they were."""
    kept = [dataclasses.replace(o, slices={k: v for k, v in o.slices.items() if first <= k <= last}) for o in objects]
    kept = [o for o in kept if o.slices]
    if not kept:
        raise SegmentWithSAM2Error(f"no prompts in the range {first}:{last}; place the correction inside it")
    return kept


def _check_starts(objects, earlier) -> None:
    """Every object needs something to start from: a positive prompt, or an earlier mask to correct."""
    for o in objects:
        if not any(v.has_positive or (o.label, k) in earlier for k, v in o.slices.items()):
            raise SegmentWithSAM2Error(f"object {o.name!r} has only negative points there and no earlier mask "
                                       "to correct; add a positive point or a box")


def _on_slice(objects, index: int) -> list[ObjectInputs]:
    kept = [dataclasses.replace(o, slices={index: o.slices[index]}) for o in objects if index in o.slices]
    if not kept:
        raise SegmentWithSAM2Error(f"no prompts on slice {index} to preview; place a point, box or mask there")
    return kept


def _corrected_slices(objects, previous) -> dict:
    """(label, slice) -> earlier logits, for every slice whose prompts changed since ``previous``."""
    if previous is None:
        return {}
    before = {o.label: o.slices for o in previous.objects}
    return {(o.label, index): previous.low_res[(o.label, index)]
            for o in objects for index, inputs in o.slices.items()
            if (o.label, index) in previous.low_res and not inputs.same_as(before.get(o.label, {}).get(index))}
