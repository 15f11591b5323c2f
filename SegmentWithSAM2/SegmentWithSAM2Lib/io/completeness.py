"""Inputs that would be read as something they are not: a NIfTI file cut short (SimpleITK fills
the missing voxels with zeros) and a DICOM series with missing or unevenly spaced slices
(SimpleITK spaces them evenly, so slices land where they were not taken).  Both are refused."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import SegmentWithSAM2Error

_SPACING_TOLERANCE = 0.01  # of the usual slice distance (DICOM positions are written to ~1e-3 mm)


def check_nifti_complete(path: Path) -> None:
    """A .nii or .nii.gz must hold every voxel its header promises."""
    name = path.name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        return
    try:
        opened = gzip.open(path, "rb") if name.endswith(".gz") else open(path, "rb")
        with opened as f:
            header = f.read(540)
            expected = _nifti_length(header)
            actual = len(header) + sum(len(block) for block in iter(lambda: f.read(1 << 22), b""))
    except (EOFError, zlib.error) as error:  # the compressed stream ends early, or breaks off
        raise SegmentWithSAM2Error(f"{path} is cut short or damaged ({error}); it was not read: copy or download "
                                   "it again") from error
    except OSError:  # not gzip at all, unreadable: SimpleITK says what it is
        return
    if expected is not None and actual < expected:
        raise SegmentWithSAM2Error(f"{path} is cut short: its header promises {expected} bytes, the file holds "
                                   f"{actual}; it was not read (a partial copy or download?)")


def _nifti_length(header: bytes) -> int | None:
    """The bytes a NIfTI-1 or NIfTI-2 file must have (header, extensions and voxels), or None."""
    for order in "<>":
        size = struct.unpack(order + "i", header[:4])[0] if len(header) >= 4 else None
        if size == 348 and len(header) >= 112:
            dims = struct.unpack(order + "8h", header[40:56])
            bitpix, offset = struct.unpack(order + "h", header[72:74])[0], struct.unpack(order + "f", header[108:112])[0]
            return int(offset) + int(np.prod(dims[1:1 + max(dims[0], 0)], dtype=np.int64)) * bitpix // 8
        if size == 540 and len(header) >= 176:
            dims = struct.unpack(order + "8q", header[16:80])
            bitpix, offset = struct.unpack(order + "h", header[14:16])[0], struct.unpack(order + "q", header[168:176])[0]
            return int(offset) + int(np.prod(dims[1:1 + max(dims[0], 0)], dtype=np.int64)) * bitpix // 8
    return None


def check_dicom_spacing(reader, folder: Path) -> None:
    """The slices of a series read by ``reader`` (with its metadata) lie evenly along their normal."""
    count = len(reader.GetFileNames())
    if count < 3 or not reader.HasMetaDataKey(0, "0020|0032") or not reader.HasMetaDataKey(0, "0020|0037"):
        return
    cosines = np.array([float(v) for v in reader.GetMetaData(0, "0020|0037").split("\\")])
    normal = np.cross(cosines[:3], cosines[3:])
    where = np.sort([np.dot(normal, [float(v) for v in reader.GetMetaData(i, "0020|0032").split("\\")])
                     for i in range(count)])
    steps = np.diff(where)
    usual = float(np.median(steps))
    worst = int(np.argmax(np.abs(steps - usual)))
    if abs(steps[worst] - usual) > _SPACING_TOLERANCE * max(usual, 1e-3):
        raise SegmentWithSAM2Error(
            f"the DICOM series in {folder} is not evenly spaced: the slices at {where[worst]:.2f} and "
            f"{where[worst + 1]:.2f} mm are {steps[worst]:.2f} mm apart, the others {usual:.2f} mm "
            f"(about {max(round(steps[worst] / usual) - 1, 0)} slice(s) missing?); it was not read, since evenly "
            "spaced slices would sit where they were not taken: give the complete series")
