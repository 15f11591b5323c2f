"""The client of ``segment-with-sam2 serve``.

    from SegmentWithSAM2Lib.remote import Client
    client = Client("http://127.0.0.1:8000", token)
    result = client.segment("ct.nii.gz", prompts, window="soft-tissue")   # a SegmentationResult
    fixed = client.segment("ct.nii.gz", more_prompts, window="soft-tissue", previous=result)

``RemoteSession`` is the torch-free part (the Slicer module uses it): it uploads an image once,
sends prompts, and keeps the labelmap the server's answers add up to.  The client owns the
truth: when the server has let the session go (410), it opens a new one, replays the requests
since the last fresh propagation, checks that the replay rebuilt its labelmap, and goes on.
"""

from __future__ import annotations

import json
import os
import threading
import warnings

import numpy as np

from ..errors import Cancelled, EmptyResultWarning, SegmentWithSAM2Error
from ..options import STOP_AFTER, preset_settings
from .connection import Connection, RemoteError, SessionExpired
from .wire import apply_region, encode_masks, image_id, image_tags, pack_image


class RemoteImage:
    """Voxels [k, j, i], IJK->RAS and the tags that steer windowing, named by their content."""

    def __init__(self, voxels: np.ndarray, ijk_to_ras: np.ndarray, metadata: dict | None = None):
        self.voxels = np.ascontiguousarray(voxels)
        self.ijk_to_ras = np.asarray(ijk_to_ras, dtype=float)
        self.tags = image_tags(metadata or {})
        self.id = image_id(self.voxels, self.ijk_to_ras, self.tags)


class RemoteSession:
    def __init__(self, connection: Connection, image: RemoteImage, model=None, axis="auto", window="auto",
                 heartbeat: bool = True):
        self.connection, self.image = connection, image
        self.opening = {"image": image.id, "model": model, "axis": axis, "window": window}
        self.labelmap = None  # the kept result's labelmap, as the server holds it
        self.kept = None  # the Python client's result for it (``Client.segment``'s ``previous``)
        self.history: list[dict] = []  # the propagations since the last fresh one, for a re-seed
        self.info = self._open()
        self._stop = threading.Event()
        if heartbeat:
            threading.Thread(target=self._beat, name="remote-heartbeat", daemon=True).start()

    def _open(self) -> dict:
        if not self._has_image():
            self.connection.call("PUT", f"/v1/images/{self.image.id}",
                                 data=pack_image(self.image.voxels, self.image.ijk_to_ras, self.image.tags))
        return self.connection.call("POST", "/v1/sessions", self.opening)

    def _has_image(self) -> bool:
        try:
            self.connection.call("HEAD", f"/v1/images/{self.image.id}")
            return True
        except RemoteError as error:
            if error.status == 404:
                return False
            raise

    @property
    def id(self) -> str:
        return self.info["session"]

    def propagate(self, prompts: dict, *, correct=False, direction="both", slice_range=None, auto_stop=True,
                  stop_after=STOP_AFTER, postprocess=True, keep_largest_component=False, fill_holes_px=0,
                  on_progress=None, should_cancel=None) -> dict:
        """The result message, with ``labelmap`` (the whole volume's) added; kept for corrections."""
        body = {"prompts": encode_masks(prompts), "correct": bool(correct), "direction": direction,
                "range": None if slice_range is None else [int(v) for v in slice_range], "auto_stop": auto_stop,
                "stop_after": int(stop_after), "postprocess": bool(postprocess),
                "keep_largest_component": bool(keep_largest_component), "fill_holes_px": int(fill_holes_px)}
        message = self._renewing(lambda: self._propagate(body, on_progress, should_cancel), replay=correct)
        self.history = (self.history if correct else []) + [body]
        return message

    def _propagate(self, body: dict, on_progress=None, should_cancel=None) -> dict:
        message, cancelling = None, False
        with self.connection.call("POST", f"/v1/sessions/{self.id}/propagate", body, stream=True) as lines:
            for line in lines:
                message = json.loads(line)
                if message["type"] != "progress":
                    break
                if on_progress is not None:
                    on_progress(message["done"], message["total"], message["slice"], message["direction"])
                if not cancelling and should_cancel is not None and should_cancel():
                    cancelling = True
                    self.cancel()
        message = self._outcome(message)
        message["labelmap"] = self.labelmap = apply_region(message, self.labelmap)
        return message

    def preview(self, prompts: dict, index: int, *, correct=False, postprocess=True, keep_largest_component=False,
                fill_holes_px=0) -> dict:
        """The masks on slice ``index`` from its prompts alone; the kept result does not change."""
        body = {"prompts": encode_masks(prompts), "slice": int(index), "correct": bool(correct),
                "postprocess": bool(postprocess), "keep_largest_component": bool(keep_largest_component),
                "fill_holes_px": int(fill_holes_px)}
        message = self._renewing(lambda: self.connection.call("POST", f"/v1/sessions/{self.id}/preview", body),
                                 replay=correct)
        message = self._outcome(message)
        message["labelmap"] = apply_region(message, None)
        return message

    def _outcome(self, message: dict | None) -> dict:
        if message is None:
            raise RemoteError("the server closed the answer before its result; run it again")
        if message["type"] == "cancelled":
            raise Cancelled(message["detail"])
        if message["type"] == "error":
            raise RemoteError(f"server answered {message['status']}: {message['detail']}", message["status"])
        for text in message.get("warnings", []):
            warnings.warn(text, EmptyResultWarning, stacklevel=4)
        return message

    def _renewing(self, call, replay: bool):
        try:
            return call()
        except SessionExpired:
            self.reseed(replay)
            return call()

    def reseed(self, replay: bool = True) -> None:
        """A new session on the same image, brought to this client's state by replaying its requests
        (``replay`` False: the next request starts afresh and needs none of them)."""
        kept, bodies = self.labelmap, list(self.history) if replay else []
        self.info, self.labelmap, self.history = self._open(), None, []
        for body in bodies:
            self._propagate(body)
        self.history = bodies
        if not replay:
            return
        if kept is not None and (self.labelmap is None or not np.array_equal(self.labelmap, kept)):
            warnings.warn("the new server session did not rebuild this client's labelmap exactly (another model "
                          "or version on the server?); later corrections start from the server's", stacklevel=3)

    def cancel(self) -> None:
        self.connection.call("POST", f"/v1/sessions/{self.id}/cancel", {})

    def heartbeat(self) -> None:
        """Keep the lease (an expired one raises SessionExpired; the next request re-seeds it)."""
        self.connection.call("POST", f"/v1/sessions/{self.id}/heartbeat", {})

    def _beat(self) -> None:
        interval = max(0.2, float(self.info.get("lease_seconds", 120)) / 3)
        while not self._stop.wait(interval):
            try:
                self.heartbeat()
            except RemoteError:  # expired or unreachable: the next request re-seeds or says why
                pass

    def close(self) -> None:
        self._stop.set()
        try:
            self.connection.call("DELETE", f"/v1/sessions/{self.id}")
        except SessionExpired:
            pass


class Client:
    """``segment`` and ``preview`` as in the Python API, run by a server."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 600.0, heartbeat: bool = True,
                 cafile=None):
        self.connection, self.heartbeat = Connection(url, token, timeout, cafile), heartbeat
        self._sessions: dict[tuple, RemoteSession] = {}
        self._images: dict[tuple, tuple] = {}  # image key -> (the image, its Volume, its RemoteImage)

    def health(self) -> dict:
        return self.connection.call("GET", "/v1/health")

    def session(self, image, *, model=None, axis="auto", window="auto") -> RemoteSession:
        """The session for this image, model, axis and window (opened, and the image uploaded, once)."""
        remote = image if isinstance(image, RemoteImage) else self._prepared(image)[1]
        key = (remote.id, model, axis, str(window))
        if key not in self._sessions:
            self._sessions[key] = RemoteSession(self.connection, remote, model, axis, str(window), self.heartbeat)
        return self._sessions[key]

    def segment(self, image, prompts, *, model=None, axis="auto", window="auto", direction="both",
                slice_range=None, auto_stop=None, stop_after=STOP_AFTER, postprocess=True,
                keep_largest_component=False, fill_holes_px=0, preset=None, on_progress=None, should_cancel=None,
                previous=None):
        """``api.segment`` on the server; ``previous`` is a result this client returned for the image."""
        chosen = preset_settings(preset, window, auto_stop, _postprocess(postprocess), keep_largest_component,
                                 fill_holes_px)
        session, volume = self._for(image, model, axis, chosen["window"], previous)
        message = session.propagate(prompts, correct=previous is not None, direction=direction,
                                    slice_range=slice_range, auto_stop=chosen["auto_stop"], stop_after=stop_after,
                                    postprocess=chosen["postprocess"],
                                    keep_largest_component=chosen["keep_largest_component"],
                                    fill_holes_px=chosen["fill_holes_px"], on_progress=on_progress,
                                    should_cancel=should_cancel)
        result = _result(message, volume)
        session.kept = result  # what a correction of this session must start from
        return result

    def preview(self, image, prompts, index: int, *, model=None, axis="auto", window="auto", postprocess=True,
                keep_largest_component=False, fill_holes_px=0, preset=None, previous=None):
        """``VolumeSession.preview`` on the server: slice ``index`` from its prompts alone."""
        chosen = preset_settings(preset, window, None, _postprocess(postprocess), keep_largest_component,
                                 fill_holes_px)
        session, volume = self._for(image, model, axis, chosen["window"], previous)
        message = session.preview(prompts, index, correct=previous is not None, postprocess=chosen["postprocess"],
                                  keep_largest_component=chosen["keep_largest_component"],
                                  fill_holes_px=chosen["fill_holes_px"])
        return _result(message, volume)

    def _prepared(self, image) -> tuple:
        """(Volume, RemoteImage) of ``image``, read and hashed once: a click on the same image (the
        same object, or an unchanged file) neither reads it again nor hashes its voxels again."""
        key = _image_key(image)
        if key not in self._images:  # the entry keeps the object alive, so its id names only it
            from ..api import to_volume

            volume = to_volume(image)
            self._images[key] = (image, volume, RemoteImage(volume.array, volume.ijk_to_ras, volume.metadata))
        return self._images[key][1:]

    def _for(self, image, model, axis, window, previous):
        volume, remote = self._prepared(image)
        session = self.session(remote, model=model, axis=axis, window=window)
        if previous is not None and session.kept is not previous:
            raise SegmentWithSAM2Error("the previous result is not this session's latest (another image, axis, window "
                                       "or an older result); correct the latest result of the same image")
        return session, volume

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()
        self._images.clear()


def _image_key(image) -> tuple:
    """A file by its path, size and modification time; anything else by the object itself."""
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        path = os.path.abspath(os.fsdecode(image))
        stat = os.stat(path)
        return "file", path, stat.st_size, stat.st_mtime_ns
    return "object", id(image)


def _postprocess(postprocess) -> bool:
    from ..core.postprocess import PostProcess

    if postprocess is None or postprocess is False:
        return False
    if postprocess is True or postprocess == PostProcess():
        return True
    raise SegmentWithSAM2Error("a server runs the default clean-up (PostProcess()) or none; give one of those")


def _result(message: dict, volume):
    from .results import read_result

    return read_result(message, volume, message["labelmap"])
