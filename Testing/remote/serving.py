"""A real uvicorn server on 127.0.0.1 (an ephemeral port), run in a thread of the test process
with the models the tests also run locally, and the small volumes both see."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np

from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.remote.audit import AuditLog
from SegmentWithSAM2Lib.remote.images import ImageStore
from SegmentWithSAM2Lib.remote.leases import Limits
from SegmentWithSAM2Lib.remote.server import create_app
from SegmentWithSAM2Lib.remote.service import Service


@contextlib.contextmanager
def running(models: dict, tmp_path, tokens=None, limits: Limits | None = None, max_bytes: int = 1 << 28):
    """(url, service) of a server that stops, and removes its images, when the block ends."""
    import uvicorn

    images = ImageStore(tmp_path / "images", max_bytes, ttl_seconds=3600)
    service = Service(models, images, limits or Limits(), AuditLog(tmp_path / "audit.jsonl"), feature_budget_mb=256)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(service, tokens), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", service
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def audit_events(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


def call(url: str, method: str, path: str, token=None, body=None, data=None, headers=None):
    """(status, parsed JSON or raw bytes) of one raw request, refusals included."""
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw


def blob_volume(slices=16, seed=0) -> tuple[Volume, np.ndarray]:
    """A bright ellipsoid in noise on an anisotropic grid, and its truth."""
    k, j, i = np.indices((slices, 64, 64))
    truth = ((k - slices / 2) / (slices * 0.38)) ** 2 + ((j - 32) / 14) ** 2 + ((i - 30) / 12) ** 2 <= 1
    noise = np.random.default_rng(seed).normal(0, 10, truth.shape)
    matrix = np.array([[0.8, 0, 0, -20], [0, -0.8, 0, 30], [0, 0, 2.0, 5], [0, 0, 0, 1]])
    return Volume((truth * 200 + noise).astype(np.float32), matrix, {"modality": "CT"}), truth


def point_prompts(slice_index: int, *negatives) -> dict:
    points = [{"position": [30, 32, slice_index]}]
    points += [{"position": [i, j, slice_index], "positive": False} for i, j in negatives]
    return {"space": "IJK", "objects": [{"name": "blob", "label": 1, "points": points}]}
