"""Named bearer tokens for ``serve``: a file of ``NAME SHA256`` lines that never holds a token
itself, a new token made and shown once, and a presented token checked in constant time against
every entry (no early exit, so timing tells nothing about which entry came close)."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import warnings
from pathlib import Path

from ..errors import SegmentWithSAM2Error
from ..io.atomic import write_atomic

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_HASH = re.compile(r"[0-9a-f]{64}")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def read_tokens(path) -> dict[str, str]:
    """name -> SHA-256 of its token; a malformed line is refused with its number."""
    path = Path(path)
    if not path.is_file():
        raise SegmentWithSAM2Error(f"token file not found: {path}; create it by adding a first token to it")
    book = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not _NAME.fullmatch(parts[0]) or not _HASH.fullmatch(parts[1]):
            raise SegmentWithSAM2Error(f"token file {path} line {number}: expected `NAME SHA256` (a name, then the "
                                       "64 hex digits of a token's SHA-256), not a token or anything else")
        if parts[0] in book:
            raise SegmentWithSAM2Error(f"token file {path} line {number}: the name {parts[0]!r} appears twice")
        book[parts[0]] = parts[1]
    return book


def new_token(path, name: str) -> str:
    """Add a token for ``name`` to the file (made, owner-only, if missing); the token is returned
    to be shown once: only its SHA-256 is kept."""
    if not _NAME.fullmatch(name):
        raise SegmentWithSAM2Error(f"token name {name!r}: use letters, digits and . _ @ - (up to 64, no spaces)")
    path = Path(path)
    book = read_tokens(path) if path.exists() else {}
    if name in book:
        raise SegmentWithSAM2Error(f"token file {path} already has a token named {name!r}; choose another name "
                                   "or delete its line to revoke it first")
    token = secrets.token_urlsafe(32)
    text = (path.read_text(encoding="utf-8") if path.exists() else "") + f"{name} {digest(token)}\n"
    data = text.encode("utf-8")
    write_atomic(path, lambda temporary: (temporary.write_bytes(data), os.chmod(temporary, 0o600)), len(data))
    return token


class TokenBook:
    """The names and token hashes a server accepts.  Read from a file, it is read again whenever
    the file changes, so deleting a line revokes that token without a restart; a file that
    cannot be read then lets no one in (closed, not open) until it is mended."""

    def __init__(self, entries: dict[str, str], path=None):
        self.entries, self.path = dict(entries), path
        self._stamp = self._stamp_now()

    @classmethod
    def read(cls, path) -> "TokenBook":
        return cls(read_tokens(path), Path(path))

    def _stamp_now(self):
        if self.path is None:
            return None
        try:
            status = self.path.stat()
        except OSError:
            return "missing"
        return status.st_mtime_ns, status.st_size, status.st_ino

    def _current(self) -> dict[str, str]:
        stamp = self._stamp_now()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self.entries = read_tokens(self.path)
            except SegmentWithSAM2Error as error:
                warnings.warn(f"{error}; no token is accepted until the file is mended", stacklevel=2)
                self.entries = {}
        return self.entries

    def who(self, presented: str | None) -> str | None:
        """The name whose token was presented, or None; every entry is compared, in constant time."""
        if not presented:
            return None
        wanted = digest(presented)
        found = None
        for name, known in self._current().items():
            if hmac.compare_digest(wanted, known) and found is None:
                found = name
        return found
