"""The oldest 3D Slicer the module runs in, and the message for an older one.

sam2 needs Python 3.10 or later; Slicer 5.8 bundles Python 3.9, Slicer 5.10 Python 3.12, so 5.10
is the minimum (the extension's CMakeLists refuses to build against anything older)."""

from __future__ import annotations

MINIMUM_SLICER = (5, 10)
MINIMUM_PYTHON = (3, 10)


def unsupported(slicer_version: tuple, python_version: tuple) -> str | None:
    """None where the module can run; otherwise what is wrong and what to do, in plain words."""
    slicer_version, python_version = tuple(slicer_version[:2]), tuple(python_version[:2])
    if slicer_version >= MINIMUM_SLICER and python_version >= MINIMUM_PYTHON:
        return None
    found = ".".join(map(str, slicer_version))
    return (f"Segment With SAM2 needs 3D Slicer {'.'.join(map(str, MINIMUM_SLICER))} or later (Python "
            f"{'.'.join(map(str, MINIMUM_PYTHON))} or later, which SAM2 requires); this is Slicer {found} with Python "
            f"{'.'.join(map(str, python_version))}. Install a current Slicer from download.slicer.org.")
