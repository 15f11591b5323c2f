"""Writes of the SAM2 effect into a segment, through the Segment Editor's own logic: its editable
area, editable intensity range and overwrite-other-segments rules apply (they live in
``vtkSlicerSegmentEditorLogic::ModifySegmentByLabelmap``), and one undo state is saved before each
interaction, so Ctrl+Z undoes one click's preview or one propagation.

``save_state`` and ``modify(segment_id, image, mode)`` are the editor's: in Slicer the effect's
``scriptedEffect.saveStateForUndo`` / ``modifySegmentByLabelmap`` (which call that logic);
without Qt, ``EditorWrites.through(logic, ...)`` calls a ``vtkSlicerSegmentEditorLogic`` itself.
"""

from __future__ import annotations

import numpy as np

from ..core.volume import Volume
from .segments import mask_on_reference_grid


class EditorWrites:
    def __init__(self, segmentation_node, volume: Volume, slice_view, save_state, modify, modes):
        self.segmentation_node, self.volume = segmentation_node, volume
        self.slice_view = slice_view  # array [k, j, i] -> its [slice, row, col] view (the session's plan)
        self.save_state, self.modify, self.modes = save_state, modify, modes

    @classmethod
    def through(cls, logic, segmentation_node, volume: Volume, slice_view):
        """Writes through a vtkSlicerSegmentEditorLogic (set up with its editor node and segmentation)."""
        def modify(segment_id, image, mode):
            logic.ModifySegmentByLabelmap(segmentation_node, segment_id, image, mode, True, False)

        modes = {name: getattr(logic, f"ModificationMode{name}") for name in ("Set", "Add", "Remove")}
        return cls(segmentation_node, volume, slice_view, logic.SaveStateForUndo, modify, modes)

    def replace_slice(self, segment_id: str, index: int, mask: np.ndarray) -> None:
        """The segment on slice ``index`` becomes ``mask``'s (a bool volume; its other slices are
        ignored), every other slice of the segment as it was: one undo state."""
        slab = np.zeros(self.volume.array.shape, dtype=np.uint8)
        self.slice_view(slab)[index] = 1
        only = np.zeros_like(slab)
        self.slice_view(only)[index] = self.slice_view(mask)[index]
        self.save_state()
        self.modify(segment_id, self._image(slab), self.modes["Remove"])
        if only.any():
            self.modify(segment_id, self._image(only), self.modes["Add"])

    def replace_segments(self, masks: dict) -> None:
        """Segments from one propagation ({segment_id: bool volume}), each replaced whole: one undo
        state for all of them."""
        self.save_state()
        for segment_id, mask in masks.items():
            self.modify(segment_id, self._image(mask.astype(np.uint8)), self.modes["Set"])

    def _image(self, mask):
        return mask_on_reference_grid(self.segmentation_node, self.volume, mask)
