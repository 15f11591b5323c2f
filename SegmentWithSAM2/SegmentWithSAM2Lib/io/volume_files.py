"""Volume files in and out: NIfTI, NRRD, MetaImage and DICOM series read as volumes, labelmaps
written on their exact grid (and .seg.nrrd segmentations), complete or not at all."""

from __future__ import annotations

import os
import secrets
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core.volume import Volume
from ..errors import SegmentWithSAM2Error

# Single-file formats only: a detached header (.mhd, .nhdr) would point at a data file with the
# temporary name, left behind beside the result.
LABELMAP_SUFFIXES = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".mha")
_DICOM_TAGS = {"modality": "0008|0060", "center": "0028|1050", "width": "0028|1051"}


def read_volume(path) -> Volume:
    path = Path(path)
    if not path.exists():
        raise SegmentWithSAM2Error(f"input not found: {path}")
    image, metadata = _read_dicom_series(path) if path.is_dir() else (_read_file(path), {})
    return volume_from_image(image, metadata)


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
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unknown format"
        raise SegmentWithSAM2Error(f"cannot read {path} as an image (NIfTI, NRRD, MetaImage or DICOM): {reason}") from error


def _read_dicom_series(folder: Path):
    series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or ()
    if not series:
        raise SegmentWithSAM2Error(f"no DICOM series found in folder {folder}")
    files = {uid: sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid) for uid in series}
    uid = max(files, key=lambda u: len(files[u]))
    if len(series) > 1:
        warnings.warn(f"{folder} holds {len(series)} DICOM series; reading the largest ({uid}, "
                      f"{len(files[uid])} files). Give a folder with one series to choose.", stacklevel=3)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files[uid])
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise SegmentWithSAM2Error(f"cannot read the DICOM series in {folder}: {str(error).strip()}") from error
    return image, _dicom_metadata(reader)


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


def check_output_path(path) -> Path:
    """Refuse an output we could not write, before any work is done."""
    path = Path(path)
    if not path.name.lower().endswith(LABELMAP_SUFFIXES):
        raise SegmentWithSAM2Error(f"output {path} must end with one of {', '.join(LABELMAP_SUFFIXES)}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise SegmentWithSAM2Error(f"output folder {folder} does not exist; create it first")
    if path.is_dir():
        raise SegmentWithSAM2Error(f"output {path} is a folder; give a file name")
    return path


def write_labelmap(labelmap: np.ndarray, volume: Volume, path, objects=(), tags=None) -> Path:
    """Write on the volume's exact grid; the file appears complete or not at all."""
    path = check_output_path(path)
    suffix = next(s for s in LABELMAP_SUFFIXES if path.name.lower().endswith(s))
    temporary = _new_file_beside(path, suffix)
    try:
        if suffix == ".seg.nrrd":
            _write_segmentation(labelmap, volume, temporary, objects, tags or {})
        else:
            sitk.WriteImage(image_on_grid(labelmap, volume), temporary, useCompression=True)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def _new_file_beside(path: Path, suffix: str) -> str:
    """An empty hidden file next to ``path``, created with the usual permissions (0666 less the umask;
    ``tempfile.mkstemp`` would make it, and so the result, readable by its owner only)."""
    while True:
        candidate = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return str(candidate)
        except FileExistsError:
            continue


def image_on_grid(array: np.ndarray, volume: Volume) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    origin, spacing, direction = volume.metadata.get("itk_geometry") or _itk_geometry(volume)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image


def _itk_geometry(volume: Volume):
    lps = volume.ijk_to_lps
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    return tuple(lps[:3, 3]), tuple(spacing), tuple((lps[:3, :3] / spacing).ravel())


def _write_segmentation(labelmap, volume, path, objects, tags):
    import slicerio

    largest = max([obj.label for obj in objects], default=1)
    segmentation = slicerio.create_segmentation(volume.shape_ijk, volume.ijk_to_lps,
                                                dtype="uint8" if largest <= 255 else "uint16")
    voxels_ijk = labelmap.transpose(2, 1, 0)  # slicerio indexes voxels [i, j, k]
    for obj in objects:
        segment = {"id": f"segment_{obj.label}", "name": obj.name, "color": list(obj.color),
                   "tags": {f"SegmentWithSAM2.{k}": str(v) for k, v in tags.items()}}
        slicerio.add_segment(segmentation, voxels_ijk == obj.label, segment)
    _keep_label_values(segmentation, objects)
    slicerio.write_segmentation(path, segmentation)


def _keep_label_values(segmentation, objects):
    """slicerio numbers the segments of a layer 1, 2, ...; give each its object's label instead,
    so that the .seg.nrrd read as a labelmap has the values of the .nii.gz/.nrrd output.  One
    labelmap never overlaps itself, so every segment is in the one layer."""
    voxels = segmentation["voxels"]
    relabelled = np.zeros_like(voxels)
    for segment, obj in zip(segmentation["segments"], objects):
        relabelled[voxels == segment["labelValue"]] = obj.label
        segment["labelValue"] = int(obj.label)
    segmentation["voxels"] = relabelled
