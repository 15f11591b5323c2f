"""Where the SAM2 effect draws a segment's prompts in a slice view: the points and box corners
of the prompts lying on the view's plane, in the view's XY pixels (plain numpy, no Qt)."""

from __future__ import annotations

import numpy as np

from .prompt_book import PromptBook

POSITIVE_COLOR, NEGATIVE_COLOR, BOX_COLOR = (0.1, 0.85, 0.2), (0.95, 0.15, 0.15), (0.95, 0.85, 0.1)


def markers_in_view(book: PromptBook, segment_id: str, ijk_to_ras: np.ndarray, xy_to_ras: np.ndarray,
                    tolerance_mm: float) -> dict:
    """{"positive": [(x, y)], "negative": [(x, y)], "boxes": [((x1, y1), (x2, y2))]}: the segment's
    prompts within ``tolerance_mm`` of the view's plane (``xy_to_ras``: the slice node's XYToRAS)."""
    ras_to_xy = np.linalg.inv(xy_to_ras)
    shown = {"positive": [], "negative": [], "boxes": []}

    def on_plane(ijk):
        ras = ijk_to_ras @ np.append(np.asarray(ijk, float), 1.0)
        xyz = ras_to_xy @ ras
        spacing = np.linalg.norm(xy_to_ras[:3, 2])  # the XY frame's z step is one slice, in mm
        return (float(xyz[0]), float(xyz[1])), abs(xyz[2]) * spacing <= tolerance_mm

    for index in book.slices(segment_id):
        prompts = book.on_slice(segment_id, index)
        for ijk, positive in prompts.points:
            xy, near = on_plane(ijk)
            if near:
                shown["positive" if positive else "negative"].append(xy)
        if prompts.box is not None:
            (a, near_a), (b, near_b) = on_plane(prompts.box[0]), on_plane(prompts.box[1])
            if near_a and near_b:
                shown["boxes"].append((a, b))
    return shown


def view_shows_slices(xy_to_ras: np.ndarray, ijk_to_ras: np.ndarray, slice_axis: int) -> bool:
    """Whether a slice view looks along the session's slice axis (its plane is one of the slices
    prompts go on): a click in a view of another orientation would land on a slice not shown."""
    normal = xy_to_ras[:3, 2] / np.linalg.norm(xy_to_ras[:3, 2])
    axis = ijk_to_ras[:3, slice_axis] / np.linalg.norm(ijk_to_ras[:3, slice_axis])
    return abs(float(normal @ axis)) > 0.99


def ijk_of(ras, volume) -> tuple | None:
    """The voxel (i, j, k) of ``volume`` nearest a world RAS point, or None outside it."""
    ijk = np.floor(volume.ras_to_ijk(np.asarray(ras, float)[None])[0] + 0.5).astype(int)
    return tuple(int(c) for c in ijk) if all(0 <= c < n for c, n in zip(ijk, volume.shape_ijk)) else None
