"""The Slicer module's job runner, without Qt: one persistent worker thread that runs the jobs of
``mrml.jobs`` in order; the result is written into the scene by ``Worker.finish``, on the main thread.

Why one persistent thread: it keeps the loaded model and the current ``VolumeSession`` (its cached
slice features make corrections and previews fast) between jobs, and thread-local state such as
PyTorch's cuDNN plan cache survives (SlicerNNInteractive measured ~1.2 s vs ~0.11 s per interaction
on a fresh thread).  Why the main thread must wait in short GIL-releasing waits (``Job.wait``):
CTK starts PythonQt without releasing the GIL (commontk/CTK
Libs/Scripting/Python/Core/ctkAbstractPythonManager.cpp), so while Slicer sits in its C++ event
loop the worker runs only when the main thread is in Python; a blocking ``Event.wait`` releases it.
"""

from __future__ import annotations

import queue
import threading

from ..errors import Cancelled
from .jobs import DownloadRequest, EditRequest, Job, Outcome, SegmentRequest, Status, Target

_STOP = object()


def _default_load_model(model_id, *, checkpoint=None, device="auto"):
    # the one place that names the library's loader
    from ..io.models import load_model

    return load_model(model_id, checkpoint=checkpoint, device=device)


def _default_download(model_id, on_progress=None, should_cancel=None):
    from ..io.model_cache import download_model

    return download_model(model_id, on_progress=on_progress, should_cancel=should_cancel)


def _slice_progress(job: Job):
    """The engine's progress callback, writing the job's (done, total, text)."""
    def report(done, total, index, direction):
        job.progress = (done, total, f"{direction} slice {index}: {done} of {total}")

    return report


_SHARED = None


def shared_worker() -> "Worker":
    """The one worker of this process (the module's panel and the Segment Editor effect share its
    thread, model and sessions); a new one once it was shut down."""
    global _SHARED
    if _SHARED is None or _SHARED.closed:
        _SHARED = Worker()
    return _SHARED


class Worker:
    """One persistent thread running jobs in order; it owns the model, the session and the last
    result (for corrections), so only that thread ever touches them."""

    def __init__(self, load_model=None, download_model=None):
        """``load_model(model_id, checkpoint=, device=)`` and ``download_model(model_id,
        on_progress=, should_cancel=)`` default to the library's own."""
        self._load = load_model or _default_load_model
        self._download = download_model or _default_download
        self._model_key = self._model = None  # one model at a time: each may hold GBs of device memory
        self._session_key = self._session = None
        self._last = None  # (session key, result) of the last segmentation
        self._editing = None  # (session key, EditSession) of the Segment Editor effect
        self._remote = None  # mrml.remote_runs.RemoteRuns, once a run goes to a server
        self._queue = queue.Queue()
        self._lock = threading.Lock()
        self._open_jobs, self._closed = set(), False
        self._thread = threading.Thread(target=self._loop, name="SegmentWithSAM2", daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, request, target: Target | None = None) -> Job:
        """Queue a SegmentRequest (with its Target) or a DownloadRequest; returns its Job."""
        work = {SegmentRequest: self._segment, DownloadRequest: self._fetch, EditRequest: self._edit}[type(request)]
        return self._put(Job(request, target), work)

    def clear(self) -> Job:
        """Drop the session and the last result (scene closed, volume gone); the model stays."""
        return self._put(Job(None), self._forget)

    def _put(self, job, work) -> Job:
        with self._lock:
            if self._closed:
                raise RuntimeError("the SegmentWithSAM2 worker is shut down")
            self._open_jobs.add(job)
            self._queue.put((job, work))
        return job

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel every open job and end the thread, waiting at most ``timeout`` s; idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                for job in self._open_jobs:
                    job.cancel()
                self._queue.put(_STOP)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            job, work = item
            self._run(job, work)
            with self._lock:
                self._open_jobs.discard(job)
        self._forget(None)
        self._model = None

    @staticmethod
    def _run(job: Job, work) -> None:
        if job.cancel_requested():
            return job._end(Status.CANCELLED)
        job.status = Status.RUNNING
        try:
            result = work(job)
        except Exception as error:  # noqa: BLE001  (every failure becomes the job's message)
            # work the user cancelled ends as cancelled, whatever it raised on the way out
            cancelled = isinstance(error, Cancelled) or job.cancel_requested()
            job._end(Status.CANCELLED if cancelled else Status.FAILED, error=None if cancelled else error)
        else:
            job._end(Status.DONE, result)

    def _segment(self, job: Job):
        from .pipeline import run_engine

        r = job.request
        if r.server:
            return self._on_server(job)
        model = self._model_for(r)
        if job.cancel_requested():  # a load takes seconds; a cancel meanwhile should not start the run
            raise Cancelled("cancelled")

        report = _slice_progress(job)
        previous = self._last[1] if r.correct and self._last and self._last[0] == r.session_key else None
        result = run_engine(model, r.volume, r.prompts, window=r.window, axis=r.axis, direction=r.direction,
                            slice_range=r.slice_range, auto_stop=r.auto_stop, postprocess=r.postprocess,
                            keep_largest_component=r.keep_largest_component, fill_holes_px=r.fill_holes_px,
                            on_progress=report, should_cancel=job.cancel_requested, previous=previous,
                            preview_slice=r.preview_slice, from_slice=r.from_slice,
                            session=self._session_for(r, model))
        if r.preview_slice is not None:
            job.progress = (1, 1, f"slice {r.preview_slice}")
        self._last = (r.session_key, result)
        return result

    def _on_server(self, job: Job):
        """The run on a server: no model here, and no torch or sam2 imported."""
        from .remote_runs import RemoteRuns

        self._remote = self._remote or RemoteRuns()
        result = self._remote.segment(job.request, _slice_progress(job), job.cancel_requested)
        if job.request.preview_slice is not None:
            job.progress = (1, 1, f"slice {job.request.preview_slice}")
        return result

    def edit_prompts(self, session_key: tuple):
        """Main thread, between jobs: the effect's PromptBook for that session (None before one),
        to draw its markers; the worker thread only changes it inside a job."""
        return self._editing[1].book if self._editing and self._editing[0] == session_key else None

    def _edit(self, job: Job):
        """An effect's interaction on the EditSession of its volume, window, axis and model (kept
        between interactions: prompts, each segment's last propagation), over the same
        VolumeSession, and so the same cached features, as the panel's runs."""
        from ..core.engine import PropagationOptions
        from .editing import EditSession

        r = job.request
        model = self._model_for(r)
        if job.cancel_requested():  # a load takes seconds: an interaction cancelled meanwhile does nothing
            raise Cancelled("cancelled")
        session = self._session_for(r, model)
        if self._editing is None or self._editing[1].engine is not session:
            self._editing = (r.session_key, EditSession(session))
        editing = self._editing[1]
        editing.options = PropagationOptions(auto_stop=r.auto_stop)
        method = getattr(editing, r.action)
        if r.action != "propagate":
            return method(*r.args)
        return method(*r.args, on_progress=_slice_progress(job), should_cancel=job.cancel_requested)

    def _model_for(self, r: SegmentRequest):
        if self._model_key != r.model_key:
            self._model_key = self._model = self._session_key = self._session = self._editing = None  # free it first
            self._model = self._load(r.model_id, checkpoint=r.checkpoint or None, device=r.device)
            self._model_key = r.model_key
        return self._model

    def _session_for(self, r: SegmentRequest, model):
        """Reused while the volume (id, modified time, geometry), window, axis and model hold."""
        from ..core.engine import VolumeSession

        if self._session_key != r.session_key:
            self._session = VolumeSession(model, r.volume, axis=r.axis, window=r.window)
            self._session_key = r.session_key
        return self._session

    def _fetch(self, job: Job):
        mb = 1 << 20

        def report(p):
            done, total, speed = p.done / mb, (p.total or 0) / mb, p.bytes_per_second / mb
            job.progress = (int(done), int(total), f"{job.request.model_id}: {done:.0f} / {total:.0f} MB, {speed:.1f} MB/s")

        return self._download(job.request.model_id, on_progress=report, should_cancel=job.cancel_requested)

    def _forget(self, _job):
        self._session_key = self._session = self._last = self._editing = None
        if self._remote is not None:
            self._remote.forget()

    def finish(self, job: Job) -> Outcome:
        """Main thread, once the job ended: write a segmentation's result into its segmentation
        node (created if there was none), unless the scene moved on; the message to show."""
        if job.status is not Status.DONE:
            return Outcome(job.message)
        if isinstance(job.request, DownloadRequest):
            return Outcome(f"{job.result} verified")
        return self._write(job) if isinstance(job.request, SegmentRequest) else Outcome("")

    @staticmethod
    def _write(job: Job) -> Outcome:
        from .pipeline import write_segments

        scene, volume_node, segmentation_node = job.target.scene, job.target.volume_node, job.target.segmentation_node
        # a scene closed (or the node deleted) meanwhile: the result belongs to nothing there now
        if volume_node.GetScene() is not scene or (segmentation_node is not None
                                                   and segmentation_node.GetScene() is not scene):
            return Outcome("the volume or segmentation was removed meanwhile; the result was dropped")
        if segmentation_node is None:
            segmentation_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
            segmentation_node.CreateDefaultDisplayNodes()  # else the result is invisible
        r = job.request
        ids = write_segments(job.result, volume_node, segmentation_node, r.prompts,
                             _replaced_segments(segmentation_node, r), r.overlap)
        return Outcome(f"wrote {len(ids)} segment(s)", tuple(ids), segmentation_node)

    def run(self, request, target=None, on_progress=None, should_cancel=None, poll: float = 0.05) -> Outcome:
        """Submit, wait in short GIL-releasing waits, finish; for console use from the main thread.
        Raises the job's error, or Cancelled."""
        job = self.submit(request, target)
        report = on_progress or (lambda *progress: None)
        while not job.wait(poll):
            report(*job.progress)
            if should_cancel is not None and should_cancel():
                job.cancel()
        report(*job.progress)  # the last one
        if job.status is Status.FAILED:
            raise job.error
        if job.status is Status.CANCELLED:
            raise Cancelled(job.message)
        return self.finish(job)


def _replaced_segments(segmentation_node, request: SegmentRequest) -> dict | None:
    """The segment a run writes: the one asked for, else the segment of that name, so that a
    preview, a propagation and a re-propagation replace one segment in place (D4)."""
    segment_id = request.segment_id or segmentation_node.GetSegmentation().GetSegmentIdBySegmentName(
        request.segment_name)
    return {1: segment_id} if segment_id else None
