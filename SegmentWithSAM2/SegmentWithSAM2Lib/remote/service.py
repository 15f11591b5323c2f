"""What the server does, without HTTP: open a lease on an uploaded image, run a propagation or a
preview on it, and account for all of it in the audit log.

Model work runs one request at a time under one lock (one process per GPU); the lock is taken in
a worker thread, so heartbeats, uploads and health checks are answered while a propagation runs.
The engine's warnings are recorded under that lock too: ``warnings.catch_warnings`` is
process-wide, and the lock is what keeps two runs' warnings apart.
"""

from __future__ import annotations

import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..core.engine import PropagationOptions, VolumeSession
from ..core.features import DEFAULT_BUDGET_MB
from ..core.postprocess import PostProcess
from ..errors import Cancelled, EmptyResultWarning, SegmentWithSAM2Error
from ..version import __version__
from .audit import AuditLog, prompt_hash
from .images import ImageStore
from .leases import Lease, LeaseBook, LeaseError, Limits
from .results import result_message
from .wire import decode_masks

PROTOCOL = 1


@dataclass
class Request:
    """A propagation or a preview as the client asked for it (already validated field by field)."""

    prompts: dict
    correct: bool = False
    direction: str = "both"
    slice_range: tuple[int, int] | None = None
    auto_stop: bool = True
    stop_after: int = 3
    postprocess: bool = True
    keep_largest_component: bool = False
    fill_holes_px: int = 0
    slice: int | None = None  # a preview's slice

    def options(self) -> PropagationOptions:
        return PropagationOptions(self.direction, self.slice_range, self.auto_stop, self.stop_after,
                                  PostProcess() if self.postprocess else None, self.keep_largest_component,
                                  self.fill_holes_px)


class Service:
    def __init__(self, models: dict, images: ImageStore, limits: Limits, audit: AuditLog | None = None,
                 feature_budget_mb: float = DEFAULT_BUDGET_MB):
        self.models, self.images, self.audit = models, images, audit
        self.book = LeaseBook(limits)
        self.feature_budget_mb = feature_budget_mb
        self.model_lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=max(2, limits.max_sessions), thread_name_prefix="model-work")

    def health(self) -> dict:
        limits = self.book.limits
        return {"status": "ok", "version": __version__, "protocol": PROTOCOL,
                "models": [_describe(name, m) for name, m in self.models.items()],
                "capabilities": {"max_upload_bytes": self.images.max_bytes, "max_sessions": limits.max_sessions,
                                 "sessions_per_token": limits.per_token, "lease_seconds": limits.lease_seconds,
                                 "idle_seconds": limits.idle_seconds, "mask_prompts": True}}

    def open(self, owner: str, image: str, model: str | None, axis: str, window: str) -> dict:
        name = model or next(iter(self.models))
        if name not in self.models:
            raise SegmentWithSAM2Error(f"this server has no model {name!r}; it serves {', '.join(self.models)}")
        self.book.admit(owner, self.feature_budget_mb)
        volume = self.images.volume(image)
        session = VolumeSession(self.models[name], volume, axis=axis, window=window,
                                feature_budget_mb=self.feature_budget_mb)
        lease = Lease(owner, name, image, session, self.feature_budget_mb)
        self.book.add(lease)
        self._log("open", lease)
        window_used = session.window
        return {"session": lease.id, **_describe(name, session.model), "version": __version__,
                "shape": list(volume.array.shape), "axis": session.plan.view, "slices": session.plan.num_slices,
                "window": [window_used.lower, window_used.upper, window_used.source],
                "lease_seconds": self.book.limits.lease_seconds, "idle_seconds": self.book.limits.idle_seconds}

    def start(self, lease: Lease, request: Request) -> tuple:
        """Check the request and claim the lease for it; the placed prompts and the earlier result."""
        if request.correct and lease.last is None:
            raise LeaseError(409, "there is no earlier result in this session to correct; propagate first")
        prompts = decode_masks(request.prompts, lease.session.volume.array.shape)
        placed = lease.session.place(prompts)
        if not lease.work.acquire(blocking=False):
            raise LeaseError(409, "this session is already running a request; wait for it or cancel it")
        lease.cancel.clear()
        return placed, (lease.last if request.correct else None)

    def propagate(self, lease: Lease, request: Request, placed, previous, emit) -> None:
        """Run in the pool: progress lines, then the result (or why there is none) through ``emit``."""
        def progress(done, total, index, direction):
            emit({"type": "progress", "done": done, "total": total, "slice": int(index), "direction": direction})

        def run():
            result = lease.session.propagate(placed, request.options(), on_progress=progress,
                                             should_cancel=lease.cancel.is_set, previous=previous)
            return result, (None if lease.last is None else lease.last.labelmap)

        self._job(lease, request, "propagate", run, emit)

    def preview(self, lease: Lease, request: Request, placed, previous) -> dict:
        out = []
        run = lambda: (lease.session.preview(placed, request.slice, request.options(), previous=previous), None)
        self._job(lease, request, "preview", run, out.append)
        return out[-1]

    def _job(self, lease: Lease, request: Request, kind: str, run, emit) -> None:
        started, waited, outcome = time.perf_counter(), 0.0, "ok"
        try:
            with self.model_lock, warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                waited = time.perf_counter() - started
                result, before = run()
            if kind == "propagate":
                lease.last = result
            warned = [str(w.message) for w in caught if issubclass(w.category, EmptyResultWarning)]
            emit(result_message(result, before, warned))
        except Cancelled:
            outcome = "cancelled"
            emit({"type": "cancelled", "detail": "cancelled; the session keeps its earlier result"})
        except SegmentWithSAM2Error as error:
            outcome = f"refused: {error}"
            emit({"type": "error", "status": 422, "detail": str(error)})
        except Exception as error:  # the client hears that it failed; the log keeps why
            outcome = f"failed: {type(error).__name__}: {error}"
            emit({"type": "error", "status": 500, "detail": "the server failed on this request; its audit log says why"})
        finally:
            lease.work.release()
            lease.worked = self.book.clock()
            self._log(kind, lease, prompts=prompt_hash(request.prompts), correct=request.correct,
                      seconds=round(time.perf_counter() - started, 3), outcome=outcome,
                      waited=round(waited, 3))

    def close(self, owner: str, lease_id: str) -> None:
        self._log("close", self.book.close(lease_id, owner))

    def reap(self) -> None:
        for lease in self.book.reap():
            self._log("expire", lease)
        self.images.prune({lease.image for lease in self.book.live()})

    def _log(self, event: str, lease: Lease, **fields) -> None:
        if self.audit is not None:
            model = lease.session.model
            self.audit.write(event, token=lease.owner, session=lease.id, image=lease.image, model=lease.model_id,
                             weights=model.weights, **fields)

    def log_upload(self, owner: str, image: str, outcome: str, size: int = 0) -> None:
        if self.audit is not None:
            self.audit.write("upload", token=owner, image=image, bytes=size, outcome=outcome)

    def shutdown(self) -> None:
        for lease in self.book.live():
            lease.cancel.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.images.close()
        if self.audit is not None:
            self.audit.close()


def _describe(name: str, model) -> dict:
    return {"model": name, "config": model.config.name, "image_size": model.image_size, "weights": model.weights,
            "device": str(model.device), "precision": model.precision}
