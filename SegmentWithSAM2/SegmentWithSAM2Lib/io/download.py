"""Checkpoint downloads: explicit, resumable (HTTP Range), SHA-256 verified, atomic, locked.

A download streams into ``NAME.part`` beside the final file; an interrupted one resumes from
there.  The file is renamed into place only after its SHA-256 matches the catalogue's, the one a
model hub reports for it (Hugging Face's ``X-Linked-Etag``), or, where no hash is known, the one
pinned in the cache's ``pins.json`` by the first download (which this download then writes).  A
first download is pinned only if it loads as a checkpoint (tensors only) and is not a web page,
so a captive portal, a cut-off body or a bad resume cannot be pinned; a resume must be answered
with the bytes asked for (Content-Range), and a body must have the length the catalogue or the
server announced.  ``remove`` clears a pin, ``repin`` replaces one on purpose.  A ``NAME.lock``
file lock keeps two processes from writing the same file.  Proxies come from the environment
(``https_proxy`` ...), as urllib reads them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import DownloadError, Remedy
from .atomic import write_text_atomic
from .hashing import sha256_of
from .transfer import Limits, stream

PINS = "pins.json"


def fetch(url: str, target: Path, sha256: str | None = None, *, size: int | None = None, offline=False,
          timeout=30.0, max_seconds: float | None = None, repin=False, on_progress=None, should_cancel=None) -> Path:
    """``target`` verified on disk, downloading it from ``url`` if needed; ``size``: the bytes the
    catalogue expects; ``max_seconds``: the whole transfer's limit (``timeout`` is per read)."""
    target = Path(target)
    if offline:
        if not target.is_file():
            raise DownloadError(f"offline mode: {target.name} is not in the cache ({target}); "
                                f"download it where the network is reachable: {url}")
        return verify_file(target, sha256 or pinned_hash(target), Remedy("download_again", str(target)))
    target.parent.mkdir(parents=True, exist_ok=True)
    with _lock(target):
        if repin:
            forget(target)
        expected = sha256 or pinned_hash(target)
        if target.is_file() and (expected is None or sha256_of(target) == expected):
            return target
        part = part_path(target)
        announced = stream(url, part, Limits(timeout, max_seconds, size), on_progress, should_cancel)
        _accept(part, target, url, expected or announced)
        if sha256 is None and pinned_hash(target) is None:
            pin_hash(target, sha256_of(target))
    return target


def part_path(target: Path) -> Path:
    """Where a download of ``target`` streams to until it is verified (resumed from there)."""
    return target.with_name(target.name + ".part")


def _accept(part: Path, target: Path, url: str, expected: str | None) -> None:
    """``part`` renamed to ``target`` if it is what was asked for; deleted otherwise."""
    actual = sha256_of(part)
    if expected is not None and actual != expected:
        part.unlink()
        raise DownloadError(f"checksum mismatch for {target.name} from {url}: expected {expected}, got {actual}; "
                            "the download was deleted", Remedy("retry"))
    if expected is None:
        _check_checkpoint(part, url)
    os.replace(part, target)


def _check_checkpoint(part: Path, url: str) -> None:
    """A file about to be pinned must be a checkpoint: not a web page, and loadable (tensors only)."""
    import torch

    with open(part, "rb") as f:
        head = f.read(256).lstrip().lower()
    reason = "is a web page (a captive portal or a login page?)" if head.startswith((b"<!doctype", b"<html", b"<?xml")) \
        else None
    if reason is None:
        try:
            torch.load(part, map_location="cpu", weights_only=True, mmap=True)
        except Exception as error:  # noqa: BLE001  (torch raises several types for foreign or cut files)
            reason = f"does not load as a checkpoint ({type(error).__name__}; cut off or not a checkpoint?)"
    if reason is not None:
        size = part.stat().st_size
        part.unlink()
        raise DownloadError(f"what {url} sent ({size} bytes) {reason}; it was deleted and not pinned", Remedy("retry"))


def verify_file(target: Path, expected: str | None, remedy: Remedy) -> Path:
    """A file to be used as it is (offline, or shipped with the project), checked as every online
    use checks it, so a damaged or replaced file is not loaded; ``remedy`` says what to do."""
    if expected is not None and (actual := sha256_of(target)) != expected:
        raise DownloadError(f"{target} does not match its checksum (expected {expected}, got {actual})", remedy)
    return target


def pinned_hash(target: Path) -> str | None:
    pins = target.parent / PINS
    return json.loads(pins.read_text()).get(target.name) if pins.is_file() else None


def pin_hash(target: Path, sha256: str | None) -> None:
    """Record ``sha256`` as ``target``'s pin (None: forget it)."""
    pins_path = target.parent / PINS
    with _lock(pins_path):
        pins = json.loads(pins_path.read_text()) if pins_path.is_file() else {}
        if sha256 is None:
            pins.pop(target.name, None)
        else:
            pins[target.name] = sha256
        write_text_atomic(pins_path, json.dumps(pins, indent=2, sort_keys=True))


def _lock(path: Path):
    """A file lock beside ``path``.  filelock is imported here: it is installed with the Slicer
    module's dependencies, and the module reads the cache's state (cache_entry) before that."""
    from filelock import FileLock

    return FileLock(str(path) + ".lock")


def forget(target: Path) -> bool:
    """Delete ``target``, its partial download and its pin; True if there was any of them."""
    had_pin = pinned_hash(target) is not None
    if had_pin:
        pin_hash(target, None)
    removed = had_pin
    for path in (target, part_path(target)):
        if path.is_file():
            path.unlink()
            removed = True
    return removed
