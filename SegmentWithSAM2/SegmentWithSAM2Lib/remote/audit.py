"""The server's audit log: one JSON line per event, appended and flushed, never rewritten.

It records who did what to which image with which weights, and how it ended: token name,
session, image SHA-256, model id and weights hash, the prompts' SHA-256, timings and outcome.
Never pixels, prompts themselves or tokens.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path


def prompt_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


class AuditLog:
    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND: every line lands at the end, whatever else writes to the file
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()

    def write(self, event: str, **fields) -> None:
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": event, **fields},
                          sort_keys=True, default=str) + "\n"
        with self._lock:
            os.write(self._fd, line.encode("utf-8"))

    def close(self) -> None:
        os.close(self._fd)
