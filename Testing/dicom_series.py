"""Writing a real DICOM CT series with SimpleITK (one file per slice), for the reader tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT_UID = "1.2.826.0.1.3680043.2.1125"


def write_ct_series(image: sitk.Image, folder: Path, window=(40, 400), series=1, prefix="slice",
                    reverse_order=False) -> Path:
    """``image`` must be right-handed (slice normal = row x column), as DICOM orders slices by it.
    ``window`` is (center, width), each a number or a DICOM multi-value string, or None for no tags.
    ``reverse_order``: files and instance numbers run against the slice positions."""
    folder.mkdir(parents=True, exist_ok=True)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    orientation = "\\".join(f"{v:.10f}" for v in [*direction[:, 0], *direction[:, 1]])
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    common = {"0008|0060": "CT", "0020|000d": f"{ROOT_UID}.1", "0020|000e": f"{ROOT_UID}.2.{series}",
              "0020|0052": f"{ROOT_UID}.4", "0010|0020": "SAM2-TEST", "0010|0010": "Test^Phantom",
              "0020|0037": orientation, "0018|0050": f"{image.GetSpacing()[2]:.6f}"}
    if window is not None:
        common.update({"0028|1050": str(window[0]), "0028|1051": str(window[1])})
    for k in range(image.GetDepth()):
        slice_image = image[:, :, k]
        tags = dict(common)
        stored = image.GetDepth() - 1 - k if reverse_order else k
        tags["0020|0013"] = str(stored + 1)
        tags["0020|0032"] = "\\".join(f"{v:.10f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k)))
        tags["0008|0018"] = f"{ROOT_UID}.3.{series}.{k + 1}"
        for key, value in tags.items():
            slice_image.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"{prefix}{stored:03d}.dcm"))
        writer.Execute(slice_image)
    return folder


def right_handed_oblique(spacing=(0.8, 0.6, 2.0), degrees=15.0) -> tuple:
    """(origin, spacing, direction) of a rotated, anisotropic, right-handed grid."""
    a = np.deg2rad(degrees)
    direction = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) @ \
        np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    return (-40.0, 25.0, -70.0), spacing, tuple(direction.ravel())


def oblique_ct(shape_kji=(5, 32, 40), seed=1) -> sitk.Image:
    """An int16 CT-like image on the right-handed oblique grid, ready for ``write_ct_series``."""
    array = np.random.default_rng(seed).integers(-900, 900, shape_kji).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    origin, spacing, direction = right_handed_oblique()
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image
