"""What the Segment Editor's SAM2 effect does, without Qt: prompts per segment and slice, a 2D
preview per click from the session's cached features, propagation of one or every prompted
segment in one pass, corrections, and writes through the editor's own logic (its masking and
overwrite rules, one undo state per interaction).

The effect's Qt file only turns view events into these calls; tests drive them on a real
``vtkMRMLScene`` with a real ``vtkMRMLSegmentEditorNode`` and ``vtkSlicerSegmentEditorLogic``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..core.engine import PropagationOptions, VolumeSession, span_from
from .prompt_book import PromptBook


class EditSession:
    """One source volume under edit: the engine session (a slice is encoded once, at its first
    click), the prompts, and each segment's last propagation (for corrections)."""

    def __init__(self, engine: VolumeSession, options: PropagationOptions | None = None):
        self.engine = engine  # shared with the module panel's runs on this volume (mrml.worker)
        self.book = PromptBook(self.engine.plan.slice_axis)
        self.options = options or PropagationOptions()
        self.results: dict = {}  # segment -> the SegmentationResult it was last propagated in
        self.corrected: dict[str, int] = {}  # segment -> the slice clicked since that propagation

    @property
    def volume(self):
        return self.engine.volume

    def click(self, segment_id: str, ijk, positive: bool = True) -> tuple[int, np.ndarray]:
        """Add a point; returns (slice, the segment's previewed mask on the volume grid).  If the
        preview fails, the point is taken back."""
        index = self.book.slice_of(ijk)
        return self._prompted(segment_id, index, lambda: self.book.add_point(segment_id, ijk, positive))

    def box(self, segment_id: str, corner1, corner2) -> tuple[int, np.ndarray]:
        index = self.book.slice_of(corner1)
        return self._prompted(segment_id, index, lambda: self.book.set_box(segment_id, corner1, corner2))

    def preview(self, segment_id: str, index: int) -> np.ndarray:
        """The segment's mask on slice ``index`` from its prompts there alone (a bool volume, that
        slice only); a click on a propagated slice refines that slice's earlier mask."""
        result = self.engine.preview(self.book.prompts([segment_id]), index, self.options,
                                     previous=self.results.get(segment_id))
        mask, view = np.zeros(result.labelmap.shape, bool), self.engine.plan.view_of
        view(mask)[index] = view(result.labelmap)[index] == self.book.label(segment_id)  # the one slice written
        return mask

    def propagate(self, segment_ids, direction: str | None = None, on_progress=None, should_cancel=None) -> dict:
        """Propagate ``segment_ids`` in one pass sharing the image features.  Segments corrected on
        one slice since they were propagated together are re-propagated from that slice with
        their other slices kept (the engine's correction path); otherwise from their prompts.
        Returns {segment_id: bool volume}; raises Cancelled, changing nothing, when cancelled."""
        segment_ids = list(segment_ids)
        options = dataclasses.replace(self.options, direction=direction or self.options.direction)
        previous, options = self._correction(segment_ids, options, direction)
        result = self.engine.propagate(self.book.prompts(segment_ids), options, on_progress, should_cancel,
                                       previous=previous)
        for s in segment_ids:
            self.results[s] = result
            self.corrected.pop(s, None)
        return {s: result.labelmap == self.book.label(s) for s in segment_ids}

    def clear_slice(self, segment_id: str, index: int) -> bool:
        return self.book.clear_slice(segment_id, index)

    def _prompted(self, segment_id, index, add):
        before, corrected = self.book.kept(segment_id, index), dict(self.corrected)
        add()
        try:
            if segment_id in self.results:
                self.corrected[segment_id] = index
            return index, self.preview(segment_id, index)
        except BaseException:  # a failed or cancelled preview leaves the prompts as they were
            self.book.restore(segment_id, index, before)
            self.corrected = corrected
            raise

    def _correction(self, segment_ids, options, direction):
        """(previous, options) of a re-propagation from the corrected slice, or (None, options)."""
        earlier = [self.results.get(s) for s in segment_ids]
        slices = {self.corrected[s] for s in segment_ids if s in self.corrected}
        if len(slices) != 1 or earlier[0] is None or any(e is not earlier[0] for e in earlier):
            return None, options
        way, span = span_from(earlier[0], slices.pop(), self.engine.plan.num_slices)
        return earlier[0], dataclasses.replace(options, direction=direction or way, slice_range=span)
