"""Jobs of the Slicer module's worker, as plain values: requests captured on the main thread, a
job's status, progress, cancel and wait, and its messages in the module's words (no Qt).

Threading rule: MRML nodes and the parameter node are read and written on the main thread only.
The main thread captures everything a job needs as plain values (``segment_request``: a copy of
the voxels, the prompts, resolved options); the worker thread (``mrml.worker``) runs only the model.
"""

from __future__ import annotations

import copy
import enum
import threading
from dataclasses import dataclass

from ..core.volume import Volume
from ..errors import Cancelled, SegmentWithSAM2Error
from ..options import DEFAULT_MODEL, preset_settings

# action -> the remedy in the module's words (its widgets and buttons); one per NEUTRAL_REMEDIES key
SLICER_REMEDIES = {
    "download": "press Download to fetch {subject}",
    "choose_model": "choose one of the known models as the Model ({subject}), or set a Checkpoint file",
    "give_checkpoint": "set a Checkpoint file for the Model",
    "choose_config": "choose the Model whose config is {subject} for this Checkpoint",
    "use_cpu": "choose cpu as the Device",
    "give_window": "type an explicit Window as CENTER,WIDTH (e.g. 40,400)",
    "restore_file": "restore {subject} by reinstalling the SegmentWithSAM2 extension",
    "download_again": "delete {subject} and press Download again",
    "retry": "press Download again; the download resumes",
    "go_offline": "check the network or proxy settings, or choose a Model that is already downloaded",
    "choose_precision": "choose cpu as the Device (the module picks the precision for the Device)",
    "install_package": "run again and let the module install its Python packages",
}
CANCELLED = "cancelled; the scene was not changed"
DOWNLOAD_CANCELLED = "download cancelled; the part fetched so far is kept and Download resumes it"


def describe(error: BaseException) -> str:
    """The one-line message the module shows for a job's error."""
    if isinstance(error, Cancelled):
        return CANCELLED
    if isinstance(error, SegmentWithSAM2Error):
        return error.phrased(SLICER_REMEDIES)
    return " ".join(f"{type(error).__name__}: {error}".split())  # unforeseen: type and message, one line


class Status(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class SegmentRequest:
    """One segmentation, as plain values captured on the main thread (the worker reads no MRML)."""

    volume: Volume  # its own copy of the voxels
    prompts: dict  # prompt-file structure, RAS world (a deep copy)
    volume_key: tuple  # (node id, image modified time, IJK->RAS): a session is valid while these hold
    model_id: str = DEFAULT_MODEL
    checkpoint: str = ""
    device: str = "auto"
    window: str = "auto"  # resolved: "display" is already the node's CENTER,WIDTH
    axis: str = "auto"
    direction: str = "both"
    slice_range: tuple[int, int] | None = None
    auto_stop: bool = True
    postprocess: bool = True
    keep_largest_component: bool = False
    fill_holes_px: int = 0
    overlap: str = "overwrite"
    preview_slice: int | None = None
    from_slice: int | None = None
    correct: bool = False
    segment_name: str = "SAM2 segment"
    segment_id: str | None = None  # an existing segment to replace
    server: tuple = ()  # (URL, token): run on that server (mrml.remote_runs), not on this computer

    @property
    def model_key(self) -> tuple:
        return self.model_id, self.checkpoint, self.device

    @property
    def session_key(self) -> tuple:
        return self.volume_key + (self.window, self.axis) + self.model_key


@dataclass(frozen=True)
class EditRequest:
    """One interaction of the Segment Editor's SAM2 effect, run on the worker's EditSession
    (mrml.editing): ``action`` is one of EDIT_ACTIONS with its ``args``; the effect writes the
    answer through the editor on the main thread."""

    volume: Volume
    volume_key: tuple
    action: str
    args: tuple = ()
    model_id: str = DEFAULT_MODEL
    checkpoint: str = ""
    device: str = "auto"
    window: str = "auto"
    axis: str = "auto"
    auto_stop: bool = True

    model_key = SegmentRequest.model_key
    session_key = SegmentRequest.session_key  # the panel's and the effect's runs share one session


EDIT_ACTIONS = ("click", "box", "propagate", "clear_slice")  # the EditSession methods an EditRequest calls


@dataclass(frozen=True)
class DownloadRequest:
    model_id: str


@dataclass(frozen=True)
class Target:
    """Where a segmentation's result goes; used by ``Worker.finish`` on the main thread only."""

    scene: object
    volume_node: object
    segmentation_node: object | None


@dataclass(frozen=True)
class Outcome:
    message: str
    segment_ids: tuple = ()
    segmentation_node: object | None = None  # the node written to (created if the request had none)


def segment_request(volume_node, segmentation_node, prompts, **values) -> tuple[SegmentRequest, Target]:
    """Main thread: the request and its target from the input nodes and plain ``values`` (the
    SegmentRequest fields from ``model_id`` on; ``window="display"`` is resolved here)."""
    volume, window, key = _captured(volume_node, values.pop("window", "display"))
    # a preset (options.PRESETS) becomes the plain settings it stands for, here on the main thread
    chosen = preset_settings(values.pop("preset", "none"), window, values.pop("auto_stop", None),
                             values.pop("postprocess", True), values.pop("keep_largest_component", False),
                             values.pop("fill_holes_px", 0))
    window = chosen.pop("window")
    chosen.pop("preset")
    values.update(chosen)
    if values.get("slice_range") is not None:
        values["slice_range"] = tuple(int(s) for s in values["slice_range"])
    if values.get("server"):
        values["server"] = tuple(values["server"])
    request = SegmentRequest(volume, copy.deepcopy(prompts), key, window=window, **values)
    return request, Target(volume_node.GetScene(), volume_node, segmentation_node)


def volume_key(volume_node) -> tuple:
    """Main thread: what a session stays valid under (node id, image modified time, world IJK->RAS)."""
    from .volumes import volume_from_node

    ijk_to_ras = volume_from_node(volume_node).ijk_to_ras  # a view of the voxels: no copy
    return volume_node.GetID(), volume_node.GetImageData().GetMTime(), tuple(ijk_to_ras.ravel().round(6))


def _captured(volume_node, window):
    """Main thread: the node's voxels as the worker's own copy, the window resolved, and its key."""
    from .pipeline import read_inputs

    volume, window = read_inputs(volume_node, window)
    volume = Volume(volume.array.copy(), volume.ijk_to_ras.copy(), dict(volume.metadata))
    return volume, window, volume_key(volume_node)


class EditRequests:
    """Main thread: the effect's EditRequests, the source volume copied once while its key and
    the window hold (not on every click)."""

    def __init__(self):
        self._captured = None  # (window asked, volume key, volume copy, resolved window)

    def make(self, volume_node, action: str, args=(), window="display", **values) -> EditRequest:
        if action not in EDIT_ACTIONS:
            raise ValueError(f"unknown edit action {action!r}; known: {', '.join(EDIT_ACTIONS)}")
        if self._captured is None or self._captured[:2] != (window, volume_key(volume_node)):
            volume, resolved, key = _captured(volume_node, window)
            self._captured = (window, key, volume, resolved)
        _, key, volume, resolved = self._captured
        return EditRequest(volume, key, action, tuple(args), window=resolved, **values)


class Job:
    """A request on its way through the worker: status, progress, cancel, wait, result or error."""

    def __init__(self, request, target: Target | None = None):
        self.request, self.target = request, target
        self.status = Status.QUEUED
        self.progress = (0, 0, "")  # (done, total, text), written by the worker
        self.result = self.error = None
        self.message = ""
        self._cancel, self._ended = threading.Event(), threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block (releasing the GIL) until the job ends or ``timeout`` passes; True if it ended."""
        return self._ended.wait(timeout)

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def _end(self, status: Status, result=None, error=None) -> None:
        self.status, self.result, self.error = status, result, error
        if status is Status.CANCELLED:
            self.message = DOWNLOAD_CANCELLED if isinstance(self.request, DownloadRequest) else CANCELLED
        elif status is Status.FAILED:
            self.message = describe(error)
        self._ended.set()
