"""SHA-256 of a file, read in blocks (checkpoints are gigabytes).  Standard library only: the
Slicer module hashes files (cache state, the sam2 manifest) before torch is installed."""

from __future__ import annotations

import hashlib

CHUNK = 1 << 20


def sha256_of(path, chunk: int = CHUNK) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
