"""Checkpoint downloads: explicit, resumable (HTTP Range), SHA-256 verified, atomic, locked.

A download streams into ``NAME.part`` beside the final file; an interrupted one resumes from
there.  The file is renamed into place only after its SHA-256 matches the registry's, or, where
no hash is published, the one pinned in the cache's ``pins.json`` by the first verified download
(which this download then writes).  A ``NAME.lock`` file lock keeps two processes from writing
the same file.  Proxies come from the environment (``https_proxy`` ...), as urllib reads them.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from ..errors import Cancelled, DownloadError, Remedy
from .checkpoints import CHUNK, sha256_of

PINS = "pins.json"


@dataclass
class Progress:
    done: int
    total: int | None
    bytes_per_second: float


def fetch(url: str, target: Path, sha256: str | None = None, *, offline=False, timeout=30.0,
          on_progress=None, should_cancel=None) -> Path:
    """``target`` verified on disk, downloading it from ``url`` if needed."""
    target = Path(target)
    if offline:
        if not target.is_file():
            raise DownloadError(f"offline mode: {target.name} is not in the cache ({target}); "
                                f"download it where the network is reachable: {url}")
        return verify_file(target, sha256 or pinned_hash(target), Remedy("download_again", str(target)))
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        expected = sha256 or pinned_hash(target)
        if target.is_file() and (expected is None or sha256_of(target) == expected):
            return target
        part = target.with_name(target.name + ".part")
        _stream(url, part, timeout, on_progress, should_cancel)
        actual = sha256_of(part)
        if expected is not None and actual != expected:
            part.unlink()
            raise DownloadError(f"checksum mismatch for {target.name} from {url}: expected {expected}, got {actual}; "
                                "the download was deleted")
        os.replace(part, target)
        if expected is None:
            pin_hash(target, actual)
    return target


def verify_file(target: Path, expected: str | None, remedy: Remedy) -> Path:
    """A file to be used as it is (offline, or shipped with the project), checked as every online
    use checks it, so a damaged or replaced file is not loaded; ``remedy`` says what to do."""
    if expected is not None and (actual := sha256_of(target)) != expected:
        raise DownloadError(f"{target} does not match its checksum (expected {expected}, got {actual})", remedy)
    return target


def pinned_hash(target: Path) -> str | None:
    pins = target.parent / PINS
    return json.loads(pins.read_text()).get(target.name) if pins.is_file() else None


def pin_hash(target: Path, sha256: str) -> None:
    pins_path = target.parent / PINS
    with FileLock(str(pins_path) + ".lock"):
        pins = json.loads(pins_path.read_text()) if pins_path.is_file() else {}
        pins[target.name] = sha256
        temporary = pins_path.with_name(PINS + ".tmp")
        temporary.write_text(json.dumps(pins, indent=2, sort_keys=True))
        os.replace(temporary, pins_path)


def _stream(url, part: Path, timeout, on_progress, should_cancel) -> None:
    """Append the rest of ``url`` to ``part``; a server that ignores Range restarts the file."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # the part is already complete
            return
        raise DownloadError(f"download of {url} failed: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, socket.timeout, TimeoutError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"cannot reach {url}: {reason} (timeout {timeout:g} s)", Remedy("go_offline")) from error
    with response:
        resumed = response.status == 206
        length = response.headers.get("Content-Length")
        total = (int(length) + (have if resumed else 0)) if length else None
        done = have if resumed else 0
        started = time.monotonic()
        with open(part, "ab" if resumed else "wb") as out:
            while True:
                if should_cancel is not None and should_cancel():
                    raise Cancelled(f"download of {url} cancelled; {done} bytes kept to resume later")
                try:
                    block = response.read(CHUNK)
                except (socket.timeout, TimeoutError, ConnectionError, OSError, http.client.HTTPException) as error:
                    raise DownloadError(f"download of {url} interrupted after {done} bytes ({error})",
                                        Remedy("retry")) from error
                if not block:
                    break
                out.write(block)
                done += len(block)
                if on_progress is not None:
                    on_progress(Progress(done, total, (done - have) / max(time.monotonic() - started, 1e-6)))
        if total is not None and done < total:
            raise DownloadError(f"download of {url} interrupted after {done} of {total} bytes", Remedy("retry"))
