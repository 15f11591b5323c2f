"""Files other than labelmaps (reports, manifests, checkpoints, pins) written complete or not at
all: into a hidden file beside the target, its size checked against what was written, then
renamed over the target; on any failure the hidden file goes and the target stays as it was."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ..errors import SegmentWithSAM2Error


def write_atomic(path, write, expected_size: int | None = None) -> Path:
    """``write(temporary_path)`` writes the content; ``expected_size``: bytes it must come to."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        write(temporary)
        size = temporary.stat().st_size
        if expected_size is not None and size != expected_size:
            raise SegmentWithSAM2Error(f"could not write {path}: {size} of {expected_size} bytes reached the disk "
                                       "(a full disk?); nothing was written")
        os.replace(temporary, path)
    except OSError as error:
        raise SegmentWithSAM2Error(f"could not write {path}: {error.strerror or error}; nothing was written") from error
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def write_text_atomic(path, text: str) -> Path:
    data = text.encode("utf-8")
    return write_atomic(path, lambda temporary: temporary.write_bytes(data), len(data))


def save_torch_atomic(obj, path) -> Path:
    """``torch.save`` into place, complete or absent (a checkpoint cut short would not load)."""
    import torch

    return write_atomic(path, lambda temporary: torch.save(obj, temporary))
