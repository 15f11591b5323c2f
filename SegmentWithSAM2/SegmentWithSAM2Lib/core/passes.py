"""The passes of one ``VolumeSession.propagate`` call: which objects share a sam2 state (a
``Group``), the passes each group runs, which pass writes a slice, progress, auto-stop, cancel.

Where objects of different groups claim the same voxel, the object prompted nearer that slice
keeps it (on a tie, the one written first): logits of separate states are not comparable and the
user's nearest prompt is the best evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import Cancelled
from ..options import DIRECTIONS, look_up
from .features import CachedState, encode_ahead
from .postprocess import merge_objects
from .tracking import condition, low_res_logits, new_state, track


def passes_for(direction: str, anchors, first: int, last: int) -> list[tuple[str, int, int]]:
    look_up(direction, DIRECTIONS, "direction")
    forward, backward = ("forward", anchors[0], last), ("backward", anchors[-1], first)
    return {"both": [forward, backward], "forward": [forward], "backward": [backward]}[direction]


def by_prompted_slices(objects) -> dict:
    """Objects grouped by the set of slices they are prompted on (each group: one sam2 state)."""
    groups = {}
    for o in objects:
        groups.setdefault(tuple(sorted(o.slices)), []).append(o)
    return groups


@dataclass
class Group:
    """Objects tracked together in one sam2 state, and the passes that track them."""
    objects: list
    passes: list

    def __post_init__(self):
        self.labels = [o.label for o in self.objects]
        self.anchors = sorted({k for o in self.objects for k in o.slices})

    def owns(self, name, index) -> bool:
        if len(self.passes) < 2 or not self.anchors[0] <= index <= self.anchors[-1]:
            return True  # each pass alone covers the slices outside the prompted span
        previous = max(a for a in self.anchors if a <= index)
        following = min(a for a in self.anchors if a >= index)
        forward_nearer = index - previous <= following - index
        return forward_nearer == (name == "forward")


class Run:
    """The state of one propagate() call: passes, ownership of slices, progress, auto-stop."""

    def __init__(self, session, groups, options, labelmap, on_progress, should_cancel, earlier):
        self.session, self.groups = session, groups
        self.earlier, self.low_res = earlier, {}
        self.options, self.on_progress, self.should_cancel = options, on_progress, should_cancel
        self.label_view = session.plan.view_of(labelmap)
        self.pixel_area = float(np.prod(session.plan.pixel_spacing))
        self.total = sum(abs(stop - start) + 1 for g in groups for _, start, stop in g.passes)
        self.processed = {name: 0 for g in groups for name, _, _ in g.passes}
        self.reached = {}

    def all_passes(self):
        model = self.session.model
        with torch.inference_mode(), model.autocast():
            for group in self.groups:
                for name, start, stop in group.passes:
                    self.one_pass(group, name, start, stop)

    def one_pass(self, group, name, start, stop):
        session = self.session
        predictor = session.model.predictor
        state = CachedState(new_state(session.frames, session.model.image_size, session.model.device),
                            session.features)
        condition(predictor, state, group.objects, self.earlier)
        absent = 0
        step = 1 if stop >= start else -1
        for index, logits, present in track(predictor, state, start, stop):
            self._check_cancel()
            self.processed[name] += 1
            furthest = self.reached.get(name, index)  # over every group's pass in this direction
            self.reached[name] = max(furthest, index) if step > 0 else min(furthest, index)
            if group.owns(name, index):
                self.write(group, index, logits)
                self._keep_low_res(state, group, index)
            self._report(index, name)
            beyond = index > group.anchors[-1] if name == "forward" else index < group.anchors[0]
            absent = absent + 1 if beyond and not present.any() else 0
            if self.options.auto_stop and absent >= self.options.stop_after:
                break
            self._encode_ahead(index + step, stop, step)  # before sam2 asks for that slice

    def _encode_ahead(self, index, stop, step):
        session, batch = self.session, self.session.encode_batch
        if batch <= 0 or (index - stop) * step > 0 or index in session.features:
            return
        upcoming = range(index, index + step * min(batch, abs(stop - index) + 1), step)
        encode_ahead(session.model.predictor, session.frames, session.features, upcoming, session.model.device)

    def write(self, group, index, logits):
        on_slice = self.session.inplane.frame_to_image(logits).cpu().numpy()
        merged = merge_objects(on_slice, group.labels, self.pixel_area, self.options.postprocess)
        current = self.label_view[index]
        if len(self.groups) > 1:
            merged = self._contested(group, index, merged, current)
        # labels of objects outside this group (earlier groups, an earlier result) stay where nothing new is
        self.label_view[index] = np.where((merged == 0) & (current != 0), current, merged)

    def _contested(self, group, index, merged, current):
        """Drop new labels where another group of this run holds the voxel by a prompt nearer
        this slice, or as near and written first."""
        distance = {label: min(abs(index - a) for a in g.anchors) for g in self.groups for label in g.labels}
        held = np.full(max(max(distance), int(current.max())) + 1, np.iinfo(np.int64).max)
        held[list(distance)] = list(distance.values())  # labels of an earlier result: never held here
        others = (current != 0) & ~np.isin(current, group.labels)
        loses = (merged != 0) & others & (held[current] <= distance[group.labels[0]])
        return np.where(loses, 0, merged)

    def _keep_low_res(self, state, group, index):
        for label, logits in zip(group.labels, low_res_logits(state, index)):
            if logits is not None:
                self.low_res[(label, index)] = logits

    def _check_cancel(self):
        if self.should_cancel is not None and self.should_cancel():
            raise Cancelled("propagation cancelled")

    def _report(self, index, name):
        if self.on_progress is not None:
            self.on_progress(sum(self.processed.values()), self.total, index, name)
