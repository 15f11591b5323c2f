"""The Python API for batch use: load a model once, segment many volumes.

    from SegmentWithSAM2Lib import load_model, segment, write_result
    model = load_model("medsam2-latest", checkpoint="MedSAM2_latest.pt")
    for path in paths:  # pathlib.Path objects
        result = segment(model, path, prompts, window="soft-tissue")
        write_result(result, out_dir / (path.name.split(".")[0] + "_seg.nii.gz"))
"""

from __future__ import annotations

import numpy as np

from .version import __version__
from .core.engine import PropagationOptions, SegmentationResult, VolumeSession
from .core.postprocess import PostProcess
from .core.prompts import check_prompts as _check_prompts
from .core.volume import Volume
from .errors import SegmentWithSAM2Error
from .io.models import load_model as _load_model
from .io.labelmaps import write_labelmap
from .io.volume_files import read_volume, volume_from_image
from .options import SEG_TYPES, STOP_AFTER, look_up, preset_settings

__all__ = ["load_model", "segment", "check_prompts", "read_volume", "write_result", "to_volume", "PostProcess"]


def load_model(model=None, *, download=False, **options):
    """``io.models.load_model``; with ``download=True`` a missing registry checkpoint is fetched first."""
    if download and model and not options.get("checkpoint") and not options.get("random_init"):
        from .io.model_cache import download_model

        download_model(model)
    return _load_model(model, **options)


def to_volume(image) -> Volume:
    """A path, a SimpleITK image, a Volume, or ``(array [k, j, i], ijk_to_ras 4x4)``."""
    if isinstance(image, Volume):
        return image
    if isinstance(image, tuple) and len(image) == 2:
        return Volume(np.asarray(image[0]), np.asarray(image[1]))
    if hasattr(image, "GetDirection"):
        return volume_from_image(image)
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        return read_volume(image)
    raise SegmentWithSAM2Error(f"cannot use {type(image).__name__} as a volume; give a path, a SimpleITK image "
                               "or (array, ijk_to_ras)")


def segment(model, image, prompts, *, axis="auto", window="auto", direction="both", slice_range=None,
            auto_stop=None, stop_after=STOP_AFTER, postprocess: PostProcess | None = PostProcess(),
            keep_largest_component=False, fill_holes_px=0, preset=None, on_progress=None, should_cancel=None,
            previous: SegmentationResult | None = None) -> SegmentationResult:
    """Segment one volume; ``prompts`` has the prompt file's structure (see the README).

    ``previous``: an earlier result on the same image, window and axis; clicks added or changed on
    a slice then correct that slice's earlier mask (sam2's interactive refinement).
    ``preset="medsam2"``: MedSAM2's published CT pipeline (options.preset_settings); ``auto_stop``
    None is on, except under that preset."""
    chosen = preset_settings(preset, window, auto_stop, postprocess is not None, keep_largest_component,
                             fill_holes_px)
    volume = to_volume(image)
    session = VolumeSession(model, volume, axis=axis, window=chosen["window"])
    options = PropagationOptions(direction, slice_range, chosen["auto_stop"], stop_after,
                                 postprocess if chosen["postprocess"] else None,
                                 chosen["keep_largest_component"], chosen["fill_holes_px"])
    return session.propagate(prompts, options, on_progress=on_progress, should_cancel=should_cancel,
                             previous=previous)


def check_prompts(image, prompts, *, axis="auto") -> None:
    """Raise SegmentWithSAM2Error with the reason if ``prompts`` do not fit ``image`` (a position
    outside the volume, a box across slices, a malformed object, ...); needs no model, so a batch
    can check all its prompt files before loading or downloading one."""
    _check_prompts(to_volume(image), prompts, axis)


def write_result(result: SegmentationResult, path, *, overwrite: bool = False, seg_type: str = "binary") -> None:
    """Write ``result`` on its volume's grid, complete or not at all.  The volume's own file is
    never overwritten (by path, symlink or hard link); another existing file only with ``overwrite=True``.
    A ``.dcm`` path writes a DICOM-SEG (DICOM input only; ``seg_type`` binary or labelmap)."""
    from pathlib import Path

    if Path(path).exists() and not overwrite:
        raise SegmentWithSAM2Error(f"output {path} already exists; give another name, or overwrite=True to replace it")
    tags = dict(result.settings, version=__version__)
    write_labelmap(result.labelmap, result.volume, path, result.objects, tags,
                   inputs=[result.volume.metadata.get("source")], seg_type=look_up(seg_type, SEG_TYPES, "DICOM-SEG type"))
