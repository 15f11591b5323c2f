"""Slice geometry: which IJK axis is the slice axis, and how a slice is laid out as an image.

A ``SlicePlan`` reorders the volume (a numpy view: transposes and flips only, exact both ways)
into ``view[slice, row, col]``, oriented as a radiologist reads it: axial and coronal with the
patient's left on the image's right, sagittal with anterior on the left, superior/anterior up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..options import AXES, look_up
from .volume import Volume

# RAS index of the patient axis each view looks along, and of its image's horizontal/vertical axes.
_VIEW_NORMAL = {"sagittal": 0, "coronal": 1, "axial": 2}
_VIEW_IN_PLANE = {"axial": (0, 1), "coronal": (0, 2), "sagittal": (1, 2)}
# Sign of the RAS component that must *decrease* along columns and rows (R->L, A->P, S->I).
_NAMES = {0: "sagittal", 1: "coronal", 2: "axial"}


@dataclass(frozen=True)
class SlicePlan:
    slice_axis: int  # IJK axis index (0=i, 1=j, 2=k) that slices are taken along
    row_axis: int
    col_axis: int
    flip_rows: bool
    flip_cols: bool
    view: str  # axial / coronal / sagittal: the anatomical view the slices are closest to
    shape_ijk: tuple[int, int, int]
    spacing: tuple[float, float, float]

    @property
    def num_slices(self) -> int:
        return self.shape_ijk[self.slice_axis]

    @property
    def slice_shape(self) -> tuple[int, int]:
        return self.shape_ijk[self.row_axis], self.shape_ijk[self.col_axis]

    @property
    def pixel_spacing(self) -> tuple[float, float]:
        return self.spacing[self.row_axis], self.spacing[self.col_axis]

    def view_of(self, array: np.ndarray) -> np.ndarray:
        """``array`` ([k, j, i]) as view[slice, row, col]; writes to the view land in ``array``."""
        order = [2 - self.slice_axis, 2 - self.row_axis, 2 - self.col_axis]
        view = np.moveaxis(array, order, [0, 1, 2])
        return view[:, :: -1 if self.flip_rows else 1, :: -1 if self.flip_cols else 1]

    def ijk_to_slice(self, points_ijk) -> np.ndarray:
        """(i, j, k) voxel coordinates -> (slice, row, col), continuous, same pixel-centre convention."""
        p = np.atleast_2d(np.asarray(points_ijk, dtype=float))
        out = np.stack([p[:, self.slice_axis], p[:, self.row_axis], p[:, self.col_axis]], axis=1)
        rows, cols = self.slice_shape
        if self.flip_rows:
            out[:, 1] = rows - 1 - out[:, 1]
        if self.flip_cols:
            out[:, 2] = cols - 1 - out[:, 2]
        return out


def plan_slices(volume: Volume, axis: str = "auto") -> SlicePlan:
    look_up(axis, AXES, "slice axis")
    singletons = [n for n, size in enumerate(volume.shape_ijk) if size == 1]
    if axis == "auto" and len(singletons) == 1:
        axis = "ijk"[singletons[0]]  # a 2D image is its one slice, whichever way it faces (not 1-px slices)
    dirs = volume.directions
    if axis in ("i", "j", "k"):
        slice_axis = "ijk".index(axis)
        view = _NAMES[int(np.argmax(np.abs(dirs[:, slice_axis])))]
    else:
        view = "axial" if axis == "auto" else axis
        slice_axis = _closest_ijk_axis(dirs, _VIEW_NORMAL[view])
    horizontal, vertical = _VIEW_IN_PLANE[view]
    a, b = [x for x in range(3) if x != slice_axis]
    col_axis, row_axis = (a, b) if abs(dirs[horizontal, a]) >= abs(dirs[horizontal, b]) else (b, a)
    # Columns run R->L (axial, coronal) or A->P (sagittal); rows run A->P (axial) or S->I.
    return SlicePlan(
        slice_axis=slice_axis, row_axis=row_axis, col_axis=col_axis,
        flip_rows=bool(dirs[vertical, row_axis] > 0), flip_cols=bool(dirs[horizontal, col_axis] > 0),
        view=view, shape_ijk=volume.shape_ijk, spacing=tuple(float(s) for s in volume.spacing))


def _closest_ijk_axis(dirs: np.ndarray, ras_axis: int) -> int:
    return int(np.argmax(np.abs(dirs[ras_axis, :])))


def span_from(previous, index: int, num_slices: int) -> tuple[str, tuple[int, int]]:
    """Direction and range for "re-propagate from this slice": away from the prompts of ``previous``
    (a result: its objects' prompted slices), so a result from a server, without torch, serves too."""
    anchors = sorted({k for o in previous.objects for k in o.slices})
    forward = index >= anchors[len(anchors) // 2]
    return ("forward", (index, num_slices - 1)) if forward else ("backward", (0, index))
