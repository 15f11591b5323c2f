"""The prompts of the Segment Editor's SAM2 effect: per segment, per slice, in the source volume's
IJK, as the prompt file holds them (``space: IJK``).  Plain Python: what the effect draws and what
the engine is given come from one place.  A segment keeps one label for the whole session, so a
correction finds its earlier mask under the same label."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SlicePrompts:
    points: list = field(default_factory=list)  # [(i, j, k), positive]
    box: tuple | None = None  # ((i, j, k), (i, j, k)) corners on this slice

    def empty(self) -> bool:
        return not self.points and self.box is None


class PromptBook:
    def __init__(self, slice_axis: int):
        self.slice_axis = slice_axis  # IJK axis the session's slices are taken along
        self._prompts: dict[str, dict[int, SlicePrompts]] = {}
        self._labels: dict[str, int] = {}

    def slice_of(self, ijk) -> int:
        return int(round(ijk[self.slice_axis]))

    def add_point(self, segment_id: str, ijk, positive: bool) -> int:
        """Add a click; returns the slice it is on."""
        index = self.slice_of(ijk)
        self._on(segment_id, index).points.append((tuple(int(round(c)) for c in ijk), bool(positive)))
        return index

    def set_box(self, segment_id: str, corner1, corner2) -> int:
        """Set the slice's box (one per slice: a new drag replaces it); returns the slice."""
        index = self.slice_of(corner1)
        if self.slice_of(corner2) != index:
            raise ValueError(f"a box lies on one slice: corners on slices {index} and {self.slice_of(corner2)}")
        rounded = [tuple(int(round(c)) for c in corner) for corner in (corner1, corner2)]
        self._on(segment_id, index).box = tuple(rounded)
        return index

    def kept(self, segment_id: str, index: int) -> SlicePrompts:
        """A copy of a slice's prompts, to put back with ``restore`` if what follows fails."""
        prompts = self.on_slice(segment_id, index)
        return SlicePrompts(list(prompts.points), prompts.box)

    def restore(self, segment_id: str, index: int, prompts: SlicePrompts) -> None:
        if prompts.empty():
            self.clear_slice(segment_id, index)
        else:
            self._prompts[segment_id][index] = prompts

    def clear_slice(self, segment_id: str, index: int) -> bool:
        """Forget a segment's prompts on one slice; whether there were any."""
        return self._prompts.get(segment_id, {}).pop(index, None) is not None

    def forget(self, segment_id: str) -> None:
        self._prompts.pop(segment_id, None)

    def on_slice(self, segment_id: str, index: int) -> SlicePrompts:
        return self._prompts.get(segment_id, {}).get(index, SlicePrompts())

    def slices(self, segment_id: str) -> list[int]:
        return sorted(self._prompts.get(segment_id, {}))

    def prompted_segments(self) -> list[str]:
        return [s for s, slices in self._prompts.items() if slices]

    def label(self, segment_id: str) -> int:
        """The segment's label in this session's results (1, 2, ... in order of first prompt)."""
        return self._labels.setdefault(segment_id, len(self._labels) + 1)

    def segment_of(self, label: int) -> str:
        return next(s for s, v in self._labels.items() if v == label)

    def prompts(self, segment_ids, only_slice: int | None = None) -> dict:
        """The prompt dict (prompt-file form, IJK) of ``segment_ids``, one object each; with
        ``only_slice``, that slice's prompts only."""
        objects = []
        for segment_id in segment_ids:
            slices = self._prompts.get(segment_id, {})
            chosen = [only_slice] if only_slice is not None else sorted(slices)
            obj = {"label": self.label(segment_id), "points": [], "boxes": []}
            for index in (i for i in chosen if i in slices):
                prompts = slices[index]
                obj["points"] += [{"position": list(p), "positive": positive} for p, positive in prompts.points]
                if prompts.box is not None:
                    obj["boxes"].append({"corner1": list(prompts.box[0]), "corner2": list(prompts.box[1])})
            if obj["points"] or obj["boxes"]:
                objects.append({k: v for k, v in obj.items() if v})
        return {"space": "IJK", "objects": objects}

    def _on(self, segment_id: str, index: int) -> SlicePrompts:
        self.label(segment_id)
        return self._prompts.setdefault(segment_id, {}).setdefault(index, SlicePrompts())
