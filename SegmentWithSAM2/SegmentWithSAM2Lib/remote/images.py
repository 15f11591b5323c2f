"""The server's images, named by the SHA-256 of their content (``wire.image_id``).

An upload streams to a hidden file in the store's folder, stops at the byte limit, is read back
(refused before inflating past the limit), its id recomputed, and only then renamed into place:
an image is complete or absent.  Images not used for ``ttl_seconds`` are deleted (they hold
patient data), and the folder goes when the server stops unless it was given.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from ..core.volume import Volume
from ..errors import SegmentWithSAM2Error
from .wire import image_id, unpack_image

IMAGE_ID = re.compile(r"[0-9a-f]{64}")


class TooLarge(SegmentWithSAM2Error):
    """An upload past the server's byte limit (HTTP 413)."""


def check_image_id(text: str) -> str:
    if not IMAGE_ID.fullmatch(text):
        raise SegmentWithSAM2Error("an image id is the 64 lower-case hex digits of its content's SHA-256")
    return text


class ImageStore:
    def __init__(self, folder=None, max_bytes: int = 2 << 30, ttl_seconds: float = 3600.0):
        self.owned = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="segment-with-sam2-images-") if folder is None else folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.ttl_seconds = int(max_bytes), ttl_seconds

    def path(self, name: str) -> Path:
        return self.folder / f"{check_image_id(name)}.npz"

    def has(self, name: str) -> bool:
        return self.path(name).is_file()

    def temporary(self) -> Path:
        return self.folder / f".upload-{uuid.uuid4().hex}"

    def accept(self, name: str, temporary: Path) -> int:
        """Check an uploaded file against its id and move it into place; its size in bytes."""
        try:
            voxels, matrix, tags = unpack_image(temporary, self.max_bytes)
            Volume(voxels, matrix, tags)  # the library's own checks of voxels and matrix
            if image_id(voxels, matrix, tags) != name:
                raise SegmentWithSAM2Error("the uploaded image's content does not match its id; compute the id "
                                           "from the same voxels, matrix and tags that are sent")
            size = temporary.stat().st_size
            os.replace(temporary, self.path(name))
            return size
        finally:
            temporary.unlink(missing_ok=True)

    def volume(self, name: str) -> Volume:
        path = self.path(name)
        if not path.is_file():
            raise SegmentWithSAM2Error(f"image {name} is not on the server; upload it first")
        os.utime(path)  # in use: its time to live starts again
        voxels, matrix, tags = unpack_image(path, self.max_bytes)
        return Volume(voxels, matrix, tags)

    def prune(self, in_use: set[str]) -> list[str]:
        """Delete images unused for the time to live (and not held by a session)."""
        now, gone = time.time(), []
        for path in self.folder.glob("*.npz"):
            if path.stem not in in_use and now - path.stat().st_mtime > self.ttl_seconds:
                path.unlink(missing_ok=True)
                gone.append(path.stem)
        return gone

    def close(self) -> None:
        if self.owned:
            shutil.rmtree(self.folder, ignore_errors=True)
