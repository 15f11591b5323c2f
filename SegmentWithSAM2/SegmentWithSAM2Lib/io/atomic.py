"""Files written complete or not at all (labelmaps, reports, manifests, checkpoints, pins): into a
hidden file beside the target, checked (its size, or a read-back), then renamed over the target;
on any failure, Ctrl-C or SIGTERM the hidden file goes and the target stays as it was."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ..errors import SegmentWithSAM2Error


def write_atomic(path, write, expected_size: int | None = None, suffix: str = ".part", check=None) -> Path:
    """``write(temporary_path)`` writes the content; ``expected_size``: bytes it must come to;
    ``check(temporary_path)`` raises if what reached the disk is not what was meant; ``suffix``
    ends the hidden file's name (writers that choose the format by it need the target's)."""
    path = Path(path)
    temporary = None
    try:
        temporary = _new_file_beside(path, suffix)
        write(temporary)
        if check is not None:
            check(temporary)
        size = temporary.stat().st_size
        if expected_size is not None and size != expected_size:
            raise SegmentWithSAM2Error(f"could not write {path}: {size} of {expected_size} bytes reached the disk "
                                       "(a full disk?); nothing was written")
        os.replace(temporary, path)
    except OSError as error:
        raise SegmentWithSAM2Error(f"could not write {path}: {error.strerror or error}; nothing was written") from error
    finally:
        if temporary is not None and temporary.exists():
            temporary.unlink()
    return path


def _new_file_beside(path: Path, suffix: str) -> Path:
    """An empty hidden file next to ``path``, created with the usual permissions (0666 less the umask;
    ``tempfile.mkstemp`` would make it, and so the result, readable by its owner only)."""
    while True:
        candidate = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return candidate
        except FileExistsError:
            continue


def write_text_atomic(path, text: str) -> Path:
    data = text.encode("utf-8")
    return write_atomic(path, lambda temporary: temporary.write_bytes(data), len(data))


def save_torch_atomic(obj, path) -> Path:
    """``torch.save`` into place, complete or absent (a checkpoint cut short would not load)."""
    import torch

    return write_atomic(path, lambda temporary: torch.save(obj, temporary))
