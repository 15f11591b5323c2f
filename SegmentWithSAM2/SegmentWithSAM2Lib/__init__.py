"""SegmentWithSAM2: SAM2-family volume segmentation for 3D Slicer and headless batch use.

Importing the package is cheap: torch, sam2 and SimpleITK load only when the API is used.
"""

from .version import __version__  # noqa: F401

_API = ("load_model", "segment", "check_prompts", "read_volume", "write_result", "to_volume")


def __getattr__(name):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
