"""The Slicer module's runs on a server ("Run on: server"): the requests it runs on this computer,
sent through ``remote.RemoteSession`` instead.  Nothing here imports torch or sam2, so the module
works in a Slicer whose Python cannot install them.

The server keeps the session's last propagation for corrections; so does ``RemoteRuns`` (its
labelmap and prompted slices), for "re-propagate from this slice" and for writing segments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.geometry import span_from
from ..core.volume import Volume


@dataclass(frozen=True)
class RemoteObject:
    name: str
    label: int
    color: tuple
    slices: dict  # prompted slice -> None: only which slices were prompted travels back


@dataclass
class RemoteResult:
    """What ``pipeline.write_segments`` reads of a result, from a server's answer."""

    labelmap: np.ndarray
    objects: list
    volume: Volume
    settings: dict = field(default_factory=dict)
    slices_processed: dict = field(default_factory=dict)
    seconds: float = 0.0


def remote_result(message: dict, volume: Volume) -> RemoteResult:
    objects = [RemoteObject(o["name"], int(o["label"]), tuple(o["color"]), {int(k): None for k in o["slices"]})
               for o in message["objects"]]
    return RemoteResult(message["labelmap"], objects, volume, dict(message["settings"]),
                        dict(message["slices_processed"]), float(message["seconds"]))


class RemoteRuns:
    """The worker's server side: one session per server, volume, window, axis and model."""

    def __init__(self):
        self._key = self._session = None
        self._last = None  # the session's last propagation (a RemoteResult)

    def segment(self, r, on_progress, should_cancel) -> RemoteResult:
        session = self._session_for(r)
        previous = self._last if r.correct else None
        direction, slice_range = r.direction, r.slice_range
        if r.from_slice is not None and previous is not None:
            direction, slice_range = span_from(previous, r.from_slice, session.info["slices"])
        if r.preview_slice is not None:
            message = session.preview(r.prompts, r.preview_slice, correct=previous is not None,
                                      postprocess=r.postprocess, keep_largest_component=r.keep_largest_component,
                                      fill_holes_px=r.fill_holes_px)
            return remote_result(message, r.volume)
        message = session.propagate(r.prompts, correct=previous is not None, direction=direction,
                                    slice_range=slice_range, auto_stop=r.auto_stop, postprocess=r.postprocess,
                                    keep_largest_component=r.keep_largest_component, fill_holes_px=r.fill_holes_px,
                                    on_progress=on_progress, should_cancel=should_cancel)
        self._last = remote_result(message, r.volume)
        return self._last

    def _session_for(self, r):
        from ..remote.client import RemoteImage, RemoteSession
        from ..remote.connection import Connection

        key = r.server + r.session_key
        if self._key != key:
            self.forget()
            url, token = r.server
            image = RemoteImage(r.volume.array, r.volume.ijk_to_ras, r.volume.metadata)
            self._session = RemoteSession(Connection(url, token or None), image, r.model_id, r.axis, r.window)
            self._key = key
        return self._session

    def forget(self) -> None:
        """Close the session (the scene closed, another volume, window, axis, model or server)."""
        if self._session is not None:
            try:
                self._session.close()
            except Exception:  # noqa: BLE001  (an unreachable server: its lease expires by itself)
                pass
        self._key = self._session = self._last = None
