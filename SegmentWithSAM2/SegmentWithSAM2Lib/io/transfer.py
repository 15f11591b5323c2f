"""One HTTP transfer into a partial file: resumed with Range, checked, bounded in time and space."""

from __future__ import annotations

import errno
import http.client
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import Cancelled, DownloadError, Remedy

CHUNK = 1 << 20
_NO_ROOM = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


@dataclass
class Progress:
    done: int
    total: int | None
    bytes_per_second: float


@dataclass(frozen=True)
class Limits:
    timeout: float = 30.0  # seconds without data
    max_seconds: float | None = None  # the whole transfer (a trickle never trips the per-read timeout)
    size: int | None = None  # the file's length, when the catalogue knows it


def stream(url: str, part: Path, limits: Limits, on_progress=None, should_cancel=None) -> str | None:
    """Append the rest of ``url`` to ``part``; a server that ignores Range restarts the file.
    Returns the SHA-256 the server reports for the file, if it reports one."""
    have = part.stat().st_size if part.exists() else 0
    response = _open(url, have, limits.timeout)
    if response is None:  # 416: the part is already complete
        return None
    with response:
        resumed = response.status == 206
        if resumed:
            _check_resume(response, have, part, url)
        length = response.headers.get("Content-Length")
        total = (int(length) + (have if resumed else 0)) if length else limits.size
        _check_total(url, total, limits.size, part)
        _check_room(part, (total or 0) - (have if resumed else 0))
        _copy(response, part, url, have if resumed else 0, total, limits, on_progress, should_cancel)
        return _hub_sha256(response)


def _open(url: str, have: int, timeout: float):
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:
            return None
        raise DownloadError(f"download of {url} failed: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, socket.timeout, TimeoutError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"cannot reach {url}: {reason} (timeout {timeout:g} s)", Remedy("go_offline")) from error


def _check_resume(response, have: int, part: Path, url: str) -> None:
    """A 206 must carry the bytes asked for; anything else would splice two files together."""
    answer = response.headers.get("Content-Range", "")
    found = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", answer.strip())
    if found is None or int(found.group(1)) != have:
        part.unlink()
        raise DownloadError(f"{url} answered the resume from byte {have} with other bytes (Content-Range "
                            f"{answer or 'missing'!r}); the partial file was deleted", Remedy("retry"))


def _check_total(url: str, total: int | None, size: int | None, part: Path) -> None:
    if size is not None and total is not None and total != size:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url} offers {total} bytes, but the catalogue's file has {size}: not the checkpoint "
                            "(a captive portal, or a changed file?); nothing was kept", Remedy("retry"))


def _check_room(part: Path, remaining: int) -> None:
    free = shutil.disk_usage(part.parent).free
    if remaining > free:
        raise DownloadError(f"not enough free space in {part.parent} to download {part.name[:-5]}: "
                            f"{remaining / 2**20:.0f} MB needed, {free / 2**20:.0f} MB free; free some space first")


def _copy(response, part: Path, url, done: int, total, limits: Limits, on_progress, should_cancel) -> int:
    started, have = time.monotonic(), done
    try:
        with open(part, "ab" if done else "wb") as out:
            while block := _read(response, url, done):
                if should_cancel is not None and should_cancel():
                    raise Cancelled(f"download of {url} cancelled; {done} bytes kept to resume later")
                out.write(block)
                done += len(block)
                elapsed = time.monotonic() - started
                if on_progress is not None:
                    on_progress(Progress(done, total, (done - have) / max(elapsed, 1e-6)))
                if limits.max_seconds is not None and elapsed > limits.max_seconds:
                    raise DownloadError(f"download of {url} took longer than {limits.max_seconds:g} s "
                                        f"({done} bytes so far)", Remedy("retry"))
    except OSError as error:
        if error.errno not in _NO_ROOM:
            raise
        part.unlink(missing_ok=True)  # a part that cannot be completed would only keep the disk full
        raise DownloadError(f"no space left to download {part.name[:-5]} into {part.parent} after {done} bytes"
                            f"{f' of {total}' if total else ''}; the partial file was removed; free some space "
                            "first") from error
    if total is not None and done < total:
        raise DownloadError(f"download of {url} interrupted after {done} of {total} bytes", Remedy("retry"))
    return done


def _read(response, url, done) -> bytes:
    try:
        return response.read(CHUNK)
    except (socket.timeout, TimeoutError, ConnectionError, OSError, http.client.HTTPException) as error:
        raise DownloadError(f"download of {url} interrupted after {done} bytes ({error})", Remedy("retry")) from error


def _hub_sha256(response) -> str | None:
    """Hugging Face reports a large (LFS) file's SHA-256 as its linked ETag."""
    tag = (response.headers.get("X-Linked-Etag") or "").strip().strip('"').lower()
    return tag if re.fullmatch(r"[0-9a-f]{64}", tag) else None
