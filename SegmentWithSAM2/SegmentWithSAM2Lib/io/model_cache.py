"""The checkpoint cache for registry models: download, verify, remove, and what is there."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DownloadError, Remedy, SegmentWithSAM2Error
from .hashing import sha256_of
from .download import fetch, forget, part_path, pinned_hash, verify_file
from .model_zoo import ModelSpec, checkpoint_path, model_spec


@dataclass
class CacheEntry:
    spec: ModelSpec
    path: Path
    size: int | None  # bytes on disk, None when absent
    state: str  # "absent", "unchecked" (verify computes it), "verified", "MISMATCH", "unpinned"
    partial: int = 0  # bytes of an unfinished download (absent only); Download resumes from there


OFFLINE_ENV = "SEGMENTWITHSAM2_OFFLINE"


def download_model(model_id: str, *, offline=False, timeout=30.0, max_seconds=None, repin=False, on_progress=None,
                   should_cancel=None) -> Path:
    """The model's verified checkpoint in the cache, downloaded if missing (never when offline,
    i.e. ``offline=True`` or ``$SEGMENTWITHSAM2_OFFLINE=1``); ``repin``: forget the cached file
    and its pin and download and pin it anew (a deliberate choice, e.g. after upstream changed it)."""
    offline = offline or os.environ.get(OFFLINE_ENV, "") not in ("", "0")
    spec = model_spec(model_id)
    target = checkpoint_path(spec)
    if spec.shipped:  # shipped with the project: verify, never download
        restore = Remedy("restore_file", str(target))
        if not target.is_file():
            raise DownloadError(f"{target} ships with the project but is missing", restore)
        return verify_file(target, spec.sha256, restore)
    last_error = None
    for url in spec.urls:  # mirrors, in order
        try:
            return fetch(url, target, spec.sha256, size=spec.size_bytes, offline=offline, timeout=timeout,
                         max_seconds=max_seconds, repin=repin, on_progress=on_progress, should_cancel=should_cancel)
        except DownloadError as error:
            if offline:
                raise
            last_error = error
    raise last_error


def cache_entry(model_id: str, check: bool = False) -> CacheEntry:
    spec = model_spec(model_id)
    path = checkpoint_path(spec)
    if not path.is_file():
        part = part_path(path)
        return CacheEntry(spec, path, None, "absent", part.stat().st_size if part.is_file() else 0)
    expected = spec.sha256 or pinned_hash(path)
    if not check:
        return CacheEntry(spec, path, path.stat().st_size, "unchecked" if expected else "unpinned")
    if expected is None:
        return CacheEntry(spec, path, path.stat().st_size, "unpinned")
    return CacheEntry(spec, path, path.stat().st_size, "verified" if sha256_of(path) == expected else "MISMATCH")


def remove_model(model_id: str) -> bool:
    """Delete the cached checkpoint, any partial download and its pin; True if something was removed."""
    spec = model_spec(model_id)
    if spec.shipped:
        raise SegmentWithSAM2Error(f"{model_id} ships with the project ({checkpoint_path(spec)}); it is not in the cache")
    return forget(checkpoint_path(spec))
