"""Writing a real DICOM CT series with SimpleITK (one file per slice), for the reader tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk


def write_ct_series(image: sitk.Image, folder: Path, window=(40, 400)) -> Path:
    """``image`` must be right-handed (slice normal = row x column), as DICOM orders slices by it."""
    folder.mkdir(parents=True, exist_ok=True)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    orientation = "\\".join(f"{v:.10f}" for v in [*direction[:, 0], *direction[:, 1]])
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    common = {"0008|0060": "CT", "0020|000d": "1.2.826.0.1.3680043.2.1125.1.1",
              "0020|000e": "1.2.826.0.1.3680043.2.1125.1.2", "0020|0037": orientation,
              "0028|1050": str(window[0]), "0028|1051": str(window[1]),
              "0018|0050": f"{image.GetSpacing()[2]:.6f}"}
    for k in range(image.GetDepth()):
        slice_image = image[:, :, k]
        tags = dict(common)
        tags["0020|0013"] = str(k + 1)
        tags["0020|0032"] = "\\".join(f"{v:.10f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k)))
        tags["0008|0018"] = f"1.2.826.0.1.3680043.2.1125.1.3.{k + 1}"
        for key, value in tags.items():
            slice_image.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(slice_image)
    return folder


def right_handed_oblique(spacing=(0.8, 0.6, 2.0), degrees=15.0) -> tuple:
    """(origin, spacing, direction) of a rotated, anisotropic, right-handed grid."""
    a = np.deg2rad(degrees)
    direction = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) @ \
        np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    return (-40.0, 25.0, -70.0), spacing, tuple(direction.ravel())
