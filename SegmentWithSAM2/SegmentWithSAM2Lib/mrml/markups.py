"""Markups and segments as prompts, in world RAS (each node's parent transforms applied).

- Point lists: every point of a ``positive`` list is positive, of a ``negative`` list negative;
  in one mixed list, a point whose label starts with "-" is negative.
- ROI nodes: boxes; the ROI's eight corners are projected onto the slice through its centre
  (so an ROI drawn in any slice view, thin or thick, rotated or not, gives that slice's box).
- A segment on a slice: a mask prompt, taken on the volume's grid.
"""

from __future__ import annotations

import numpy as np

from ..errors import SegmentWithSAM2Error

NEGATIVE_PREFIX = "-"


def points_of(node, positive: bool | None = None) -> list[dict]:
    """Control points in world RAS; ``positive=None`` reads each point's label prefix."""
    if node is None:
        return []
    points = []
    for index in range(node.GetNumberOfControlPoints()):
        if not placed(node, index):
            continue
        position = [0.0, 0.0, 0.0]
        node.GetNthControlPointPositionWorld(index, position)
        is_positive = positive if positive is not None else \
            not node.GetNthControlPointLabel(index).startswith(NEGATIVE_PREFIX)
        points.append({"position": position, "positive": bool(is_positive)})
    return points


def placed(node, index: int) -> bool:
    """A control point the user sees: its position defined (not being placed, not cleared) and
    not hidden (D26)."""
    return (node.GetNthControlPointPositionStatus(index) == node.PositionDefined
            and bool(node.GetNthControlPointVisibility(index)))


def roi_is_placed(roi_node) -> bool:
    """An ROI with a box to use: after "Clear" or an unfinished placement it has none (D9)."""
    return roi_node.GetNumberOfControlPoints() > 0 and bool(roi_node.GetControlPointPlacementComplete())


def box_of(roi_node) -> dict:
    """An ROI node as a box prompt given by its eight world corners."""
    centre, size = [0.0] * 3, [0.0] * 3
    roi_node.GetCenterWorld(centre)
    roi_node.GetSizeWorld(size)
    axes = []
    for getter in (roi_node.GetXAxisWorld, roi_node.GetYAxisWorld, roi_node.GetZAxisWorld):
        axis = [0.0] * 3
        getter(axis)
        axes.append(np.asarray(axis))
    corners = [np.asarray(centre) + sum(sign * s / 2 * a for sign, s, a in zip(signs, size, axes))
               for signs in np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T]
    return {"corners": [c.tolist() for c in corners], "name": roi_node.GetName()}


def object_prompts(name, label, color, positive=None, negative=None, rois=(), masks=()) -> dict:
    """One object's prompts from markups nodes (and mask prompts already on the volume grid)."""
    points = points_of(positive, None if negative is None else True) + points_of(negative, False)
    obj = {"name": name, "label": label, "color": list(color), "points": points,
           "boxes": [box_of(roi) for roi in rois if roi is not None and roi_is_placed(roi)], "masks": list(masks)}
    if not obj["points"] and not obj["boxes"] and not obj["masks"]:
        raise SegmentWithSAM2Error(f"no prompts for {name!r}: place points, a box (ROI) or choose a mask segment")
    return obj


POSITIVE_COLOR, NEGATIVE_COLOR = (0.1, 0.8, 0.1), (0.9, 0.1, 0.1)


def style_prompt_points(node, positive: bool) -> None:
    """Positive points green, negative red, so the two lists are told apart at a glance (D16)."""
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    color = POSITIVE_COLOR if positive else NEGATIVE_COLOR
    display.SetSelectedColor(*color)
    display.SetColor(*color)


class LastPlacedPoint:
    """The prompt point the user placed (or moved) last, from MRML's point events: "this slice" is
    the one through it, whichever slice view it was placed in (D15).  Main thread only."""

    def __init__(self):
        self.node, self._tags = None, {}

    def watch(self, node) -> None:
        if node is not None and node not in self._tags:
            events = (node.PointPositionDefinedEvent, node.PointModifiedEvent)
            self._tags[node] = [node.AddObserver(event, self._placed) for event in events]

    def forget(self) -> None:
        """Stop watching (scene closed): nothing of a previous scene is used in the next."""
        for node, tags in self._tags.items():
            for tag in tags:
                node.RemoveObserver(tag)
        self.node, self._tags = None, {}

    def _placed(self, caller, _event) -> None:
        self.node = caller

    def position(self) -> list | None:
        """World position of the last placed point of the node touched last, or None."""
        node = self.node
        indices = [i for i in range(node.GetNumberOfControlPoints()) if placed(node, i)] if node is not None else []
        if not indices:
            return None
        position = [0.0, 0.0, 0.0]
        node.GetNthControlPointPositionWorld(indices[-1], position)
        return position
