"""Volume files read: NIfTI, NRRD, MetaImage and DICOM series as volumes with their exact geometry."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core.volume import Volume
from ..errors import SegmentWithSAM2Error
from .completeness import check_dicom_spacing, check_nifti_complete

_DICOM_TAGS = {"modality": "0008|0060", "center": "0028|1050", "width": "0028|1051"}


def read_volume(path, series: str | None = None) -> Volume:
    """``series``: the SeriesInstanceUID to read when a DICOM folder holds several."""
    path = Path(path)
    if not path.exists():
        raise SegmentWithSAM2Error(f"input not found: {path}")
    if series and not path.is_dir():
        raise SegmentWithSAM2Error(f"a series UID was given but {path} is a file, not a DICOM folder")
    image, metadata = _read_dicom_series(path, series) if path.is_dir() else (_read_file(path), {})
    volume = volume_from_image(image, metadata)
    volume.metadata["source"] = str(path)  # the file (or DICOM folder) it came from: never an output
    return volume


def volume_from_image(image: sitk.Image, metadata: dict | None = None) -> Volume:
    """A SimpleITK image (LPS physical space) as a Volume; its exact ITK geometry is kept."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise SegmentWithSAM2Error(
            f"the image has {image.GetNumberOfComponentsPerPixel()} components per voxel (colour or vector); "
            "give a single-channel volume")
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:  # one time point, as NRRD/MHA may store it
        image = sitk.Extract(image, [*image.GetSize()[:3], 0], [0, 0, 0, 0])
    dimension = image.GetDimension()
    array = sitk.GetArrayFromImage(image)
    if dimension != 3:
        return Volume(array, np.eye(4))  # Volume refuses 2D and 4D with a clear message
    metadata = dict(metadata or {})
    metadata["itk_geometry"] = (image.GetOrigin(), image.GetSpacing(), image.GetDirection())
    return Volume.from_lps(array, ijk_to_lps_of(image), metadata)


def ijk_to_lps_of(image: sitk.Image) -> np.ndarray:
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    matrix = np.eye(4)
    matrix[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=float)
    matrix[:3, 3] = image.GetOrigin()
    return matrix


def _read_file(path: Path) -> sitk.Image:
    check_nifti_complete(path)
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unknown format"
        raise SegmentWithSAM2Error(f"cannot read {path} as an image (NIfTI, NRRD, MetaImage or DICOM): {reason}") from error


def _read_dicom_series(folder: Path, series: str | None = None):
    uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or ()
    if not uids:
        raise SegmentWithSAM2Error(f"no DICOM series found in folder {folder}")
    files = {uid: sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid) for uid in uids}
    if series is not None and series not in files:
        raise SegmentWithSAM2Error(f"{folder} holds no series {series}; it holds {', '.join(sorted(files))}")
    uid = series or max(files, key=lambda u: len(files[u]))
    if len(uids) > 1 and series is None:
        warnings.warn(f"{folder} holds {len(uids)} DICOM series; reading the largest ({uid}, "
                      f"{len(files[uid])} files). Give --series UID to choose.", stacklevel=3)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files[uid])
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise SegmentWithSAM2Error(f"cannot read the DICOM series in {folder}: {str(error).strip()}") from error
    check_dicom_spacing(reader, folder)
    # the instances, in slice order, that a DICOM-SEG of this volume must reference
    return image, {**_dicom_metadata(reader), "series_uid": uid, "dicom_files": list(files[uid])}


def _dicom_metadata(reader) -> dict:
    def tag(key):
        name = _DICOM_TAGS[key]
        return reader.GetMetaData(0, name).strip() if reader.HasMetaDataKey(0, name) else ""

    metadata = {"modality": tag("modality")}
    center, width = tag("center").split("\\")[0], tag("width").split("\\")[0]
    if center and width:
        try:
            metadata["window"] = (float(center), float(width))
        except ValueError:
            pass  # a malformed tag is ignored; auto falls back to the modality default
    return metadata
