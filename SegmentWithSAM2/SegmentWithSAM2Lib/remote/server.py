"""The HTTP face of ``Service`` (protocol version 1, under ``/v1``), on FastAPI.

Every path but ``/v1/health`` needs a bearer token from the token book (401, nothing more, without
one), unknown paths included; without a token book (a loopback-only server) every caller is
"local".  No endpoint takes a server path, a model or code: images arrive as data, models are the
ones the server was started with.
"""

from __future__ import annotations

import json
import queue
import threading
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.concurrency import run_in_threadpool

from ..errors import SegmentWithSAM2Error
from ..options import DIRECTIONS, STOP_AFTER, look_up
from .images import TooLarge, check_image_id
from .leases import LeaseError
from .service import Request as Run, Service
from .tokens import TokenBook

HEALTH = "/v1/health"
TOO_LARGE = "the upload is larger than this server accepts ({} bytes); downsample or crop the volume first"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionBody(_Strict):
    image: StrictStr
    model: StrictStr | None = None
    axis: StrictStr = "auto"
    window: StrictStr = "auto"


class RunBody(_Strict):
    prompts: dict
    correct: StrictBool = False
    direction: StrictStr = "both"
    range: tuple[StrictInt, StrictInt] | None = None
    auto_stop: StrictBool = True
    stop_after: StrictInt = Field(STOP_AFTER, ge=1)
    postprocess: StrictBool = True
    keep_largest_component: StrictBool = False
    fill_holes_px: StrictInt = Field(0, ge=0, le=1 << 20)


class PreviewBody(RunBody):
    slice: StrictInt


def create_app(service: Service, tokens: TokenBook | None) -> FastAPI:
    app = FastAPI(title="SegmentWithSAM2", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=_lifespan(service))
    _guard(app, tokens)
    _errors(app)
    _images(app, service)
    _sessions(app, service)
    return app


def _lifespan(service: Service):
    @asynccontextmanager
    async def lifespan(app):
        stop = threading.Event()
        interval = max(0.05, min(1.0, service.book.limits.lease_seconds / 4))
        reaper = threading.Thread(target=_reap, args=(service, stop, interval), name="lease-reaper", daemon=True)
        reaper.start()
        try:
            yield
        finally:
            stop.set()
            reaper.join()
            service.shutdown()
    return lifespan


def _reap(service: Service, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        service.reap()


def _guard(app: FastAPI, tokens: TokenBook | None) -> None:
    @app.middleware("http")
    async def authenticate(request: Request, call_next):
        if request.url.path == HEALTH and request.method == "GET":
            return await call_next(request)
        caller = _caller(tokens, request.headers.get("authorization", ""))
        if caller is None:
            return JSONResponse({"detail": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        request.state.caller = caller
        return await call_next(request)


def _caller(tokens: TokenBook | None, header: str) -> str | None:
    if tokens is None:
        return "local"
    scheme, _, token = header.partition(" ")
    return tokens.who(token.strip()) if scheme.lower() == "bearer" else None


def _errors(app: FastAPI) -> None:
    @app.exception_handler(LeaseError)
    async def lease_error(request, error: LeaseError):
        return JSONResponse({"detail": str(error)}, status_code=error.status)

    @app.exception_handler(SegmentWithSAM2Error)
    async def refused(request, error: SegmentWithSAM2Error):
        return JSONResponse({"detail": str(error)}, status_code=413 if isinstance(error, TooLarge) else 422)


def _images(app: FastAPI, service: Service) -> None:
    store = service.images

    @app.head("/v1/images/{image}")
    def has_image(image: str):
        return Response(status_code=200 if store.has(check_image_id(image)) else 404)

    @app.put("/v1/images/{image}")
    async def upload(image: str, request: Request):
        check_image_id(image)
        if store.has(image):  # content-addressed: the same id is the same image
            return {"image": image, "stored": False}
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > store.max_bytes:
            raise TooLarge(TOO_LARGE.format(store.max_bytes))
        temporary = store.temporary()
        try:
            await _receive(request, temporary, store.max_bytes)
            size = await run_in_threadpool(store.accept, image, temporary)
        except SegmentWithSAM2Error as error:
            service.log_upload(request.state.caller, image, f"refused: {error}")
            raise
        finally:
            temporary.unlink(missing_ok=True)
        service.log_upload(request.state.caller, image, "stored", size)
        return {"image": image, "stored": True, "bytes": size}


async def _receive(request: Request, path, limit: int) -> None:
    size = 0
    with open(path, "wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(TOO_LARGE.format(limit))
            out.write(chunk)


def _sessions(app: FastAPI, service: Service) -> None:
    @app.get(HEALTH)
    def health():
        return service.health()

    @app.post("/v1/sessions")
    def open_session(body: SessionBody, request: Request):
        return service.open(request.state.caller, check_image_id(body.image), body.model, body.axis, body.window)

    @app.post("/v1/sessions/{lease_id}/propagate")
    def propagate(lease_id: str, body: RunBody, request: Request):
        lease = service.book.get(lease_id, request.state.caller, work=True)
        run = _run(body)
        placed, previous = service.start(lease, run)
        events = queue.SimpleQueue()
        service.pool.submit(service.propagate, lease, run, placed, previous, events.put)
        return StreamingResponse(_lines(events, lease), media_type="application/x-ndjson")

    @app.post("/v1/sessions/{lease_id}/preview")
    def preview(lease_id: str, body: PreviewBody, request: Request):
        lease = service.book.get(lease_id, request.state.caller, work=True)
        run = _run(body)
        placed, previous = service.start(lease, run)
        message = service.preview(lease, run, placed, previous)
        return JSONResponse(message, status_code=message.get("status", 200))

    @app.post("/v1/sessions/{lease_id}/cancel")
    def cancel(lease_id: str, request: Request):
        lease = service.book.get(lease_id, request.state.caller)
        lease.cancel.set()
        return {"session": lease.id, "running": lease.work.locked()}

    @app.post("/v1/sessions/{lease_id}/heartbeat")
    def heartbeat(lease_id: str, request: Request):
        lease = service.book.get(lease_id, request.state.caller)
        return {"session": lease.id, "lease_seconds": service.book.limits.lease_seconds}

    @app.delete("/v1/sessions/{lease_id}")
    def close(lease_id: str, request: Request):
        service.close(request.state.caller, lease_id)
        return {"session": lease_id, "closed": True}


def _run(body: RunBody) -> Run:
    return Run(body.prompts, body.correct, look_up(body.direction, DIRECTIONS, "direction"),
               None if body.range is None else tuple(body.range), body.auto_stop, body.stop_after,
               body.postprocess, body.keep_largest_component, body.fill_holes_px, getattr(body, "slice", None))


async def _lines(events: queue.SimpleQueue, lease):
    """The job's events as JSON lines; a client that goes away mid-run cancels it."""
    done = False
    try:
        while not done:
            event = await anyio.to_thread.run_sync(events.get, abandon_on_cancel=True)
            done = event["type"] != "progress"
            yield (json.dumps(event) + "\n").encode("utf-8")
    finally:
        if not done:
            lease.cancel.set()
