"""Labelmaps written on the input's exact grid (``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``) and
segmentations (``.seg.nrrd``), complete or absent.

Everything that can be known before a run is checked first (``check_output_path``): the format,
the folder, write permission, free space, that the format can hold the input's geometry, and that
the output is not one of the inputs.  A write goes to a hidden file beside the target, which is
read back and compared with what was meant (SimpleITK's writers do not raise on a full disk: they
leave a short or empty file) before it is renamed over the target; on any failure, Ctrl-C or
SIGTERM the hidden file is removed and the target is left as it was.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core.prompt_fields import DEFAULT_TERMINOLOGY
from ..core.volume import Volume
from ..errors import SegmentWithSAM2Error
from .atomic import write_atomic

# Single-file formats only: a detached header (.mhd, .nhdr) would point at a data file with the
# temporary name, left behind beside the result.
LABELMAP_SUFFIXES = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".mha", ".dcm")  # .dcm: DICOM-SEG (io.dicom_seg)
_NIFTI = (".nii.gz", ".nii")
_HEADROOM = 1 << 20
_NAME_HOLDER = "SegmentWithSAM2-name-{}"  # in the header until the real (UTF-8) name is written in  # bytes beyond the voxels: headers, and the file system's own blocks


def suffix_of(path: Path) -> str:
    name = path.name.lower()
    for suffix in LABELMAP_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise SegmentWithSAM2Error(f"output {path} must end with one of {', '.join(LABELMAP_SUFFIXES)}")


def check_output_folder(path: Path) -> Path:
    """The folder a file is to be written in: it exists and can be written to."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise SegmentWithSAM2Error(f"output folder {folder} does not exist; create it first")
    if path.is_dir():
        raise SegmentWithSAM2Error(f"output {path} is a folder; give a file name")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise SegmentWithSAM2Error(f"cannot write {path}: {'the file' if path.exists() else 'its folder'} "
                                   "is read-only; choose another output")
    return folder


def check_output_path(path, volume: Volume | None = None, inputs=()) -> Path:
    """Refuse an output that could not, or must not, be written, before any work is done:
    ``inputs`` are paths the output may not be (by name, symlink or hard link)."""
    path = Path(path)
    suffix = suffix_of(path)
    for source in inputs:
        if source is not None and same_file(path, source):
            raise SegmentWithSAM2Error(f"output {path} is the input {source}; give another file name "
                                       "(inputs are never overwritten)")
    folder = check_output_folder(path)
    if volume is not None:
        _check_room(path, folder, volume)
        _check_format_holds(path, suffix, volume)
        if suffix == ".dcm":
            from .dicom_seg import check_dicom_source

            check_dicom_source(volume, path)
    return path


def same_file(a, b) -> bool:
    """Whether two paths name one file: the same path, a symlink to it, or a hard link."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _check_room(path: Path, folder: Path, volume: Volume) -> None:
    need = int(np.prod(volume.array.shape)) * 2 + _HEADROOM  # uint16 voxels, uncompressed: an upper bound
    free = shutil.disk_usage(folder).free
    if free < need:
        raise SegmentWithSAM2Error(f"not enough free space for {path}: about {need / 2**20:.0f} MB needed, "
                                   f"{free / 2**20:.0f} MB free in {folder}; free some space or choose another folder")


def _check_format_holds(path: Path, suffix: str, volume: Volume) -> None:
    """NIfTI stores only rotations: a sheared or skewed grid would come back as another grid."""
    directions = volume.directions
    if suffix in _NIFTI and not np.allclose(directions.T @ directions, np.eye(3), atol=1e-4):
        raise SegmentWithSAM2Error(f"{path.name}: NIfTI cannot hold this volume's non-orthogonal (sheared) "
                                   "voxel axes, so the result would not lie on the input's grid; write .nrrd or .seg.nrrd")


def write_labelmap(labelmap: np.ndarray, volume: Volume, path, objects=(), tags=None, inputs=(),
                   seg_type: str = "binary") -> Path:
    """Write on the volume's exact grid; the file appears complete or not at all (see the module).
    ``seg_type``: a DICOM-SEG's segmentation type (binary or labelmap)."""
    path = check_output_path(path, volume, inputs)
    suffix = suffix_of(path)
    if suffix == ".dcm":
        from .dicom_seg import write_dicom_seg

        return write_dicom_seg(labelmap, volume, path, objects, tags or {}, seg_type)
    if suffix == ".seg.nrrd":
        written = {}

        def write(temporary):
            written.update(_write_segmentation(labelmap, volume, str(temporary), objects, tags or {}))
        return write_atomic(path, write, suffix=suffix, check=lambda t: _check_segmentation(str(t), written, path))
    image = image_on_grid(labelmap, volume)
    return write_atomic(path, lambda t: sitk.WriteImage(image, str(t), useCompression=True), suffix=suffix,
                        check=lambda t: _check_image(str(t), image, labelmap, path))


def _check_image(temporary: str, image: sitk.Image, labelmap: np.ndarray, path: Path) -> None:
    """The written file read back: the same voxels on the same grid, or the write failed."""
    try:
        back = sitk.ReadImage(temporary)
        same = np.array_equal(sitk.GetArrayFromImage(back), labelmap) and _same_geometry(back, image)
    except RuntimeError:
        same = False
    if not same:
        raise SegmentWithSAM2Error(f"could not write {path}: the file came out {os.path.getsize(temporary)} bytes "
                                   "and does not read back as written (a full disk?); nothing was written")


def _same_geometry(a: sitk.Image, b: sitk.Image) -> bool:
    # NIfTI keeps the geometry in float32: allow its rounding, nothing more
    return all(np.allclose(x, y, rtol=1e-6, atol=1e-4) for x, y in
               ((a.GetOrigin(), b.GetOrigin()), (a.GetSpacing(), b.GetSpacing()), (a.GetDirection(), b.GetDirection())))


def _check_segmentation(temporary: str, expected: dict, path: Path) -> None:
    import slicerio

    try:
        back = slicerio.read_segmentation(temporary)
        same = segment_names(temporary) == [s["name"] for s in expected["segments"]] \
            and np.array_equal(back["voxels"], expected["voxels"])
    except Exception:  # noqa: BLE001  (any unreadable file is a failed write)
        same = False
    if not same:
        raise SegmentWithSAM2Error(f"could not write {path}: the file does not read back as written (a full disk?); "
                                   "nothing was written")


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
    for n, obj in enumerate(objects):
        segment = {"id": f"segment_{obj.label}", "name": _NAME_HOLDER.format(n), "color": list(obj.color),
                   "terminology": obj.terminology or DEFAULT_TERMINOLOGY,
                   "tags": {f"SegmentWithSAM2.{k}": str(v) for k, v in tags.items()}}
        slicerio.add_segment(segmentation, voxels_ijk == obj.label, segment)
    _keep_label_values(segmentation, objects)
    slicerio.write_segmentation(path, segmentation)
    _put_names(path, [obj.name for obj in objects])
    for segment, obj in zip(segmentation["segments"], objects):
        segment["name"] = obj.name
    return segmentation


def _put_names(path, names) -> None:
    """pynrrd writes its header in ASCII only, and Slicer reads segment names as UTF-8: write the
    names in after it (the header ends at the first empty line; the voxels follow unchanged)."""
    data = Path(path).read_bytes()
    header, _, voxels = data.partition(b"\n\n")
    header += b"\n"  # every header line now ends with a newline, the last one too
    for n, name in enumerate(names):
        header = header.replace(f":={_NAME_HOLDER.format(n)}\n".encode(), b":=" + name.encode("utf-8") + b"\n")
    Path(path).write_bytes(header + b"\n" + voxels)


def segment_names(path) -> list[str]:
    """The segment names in a .seg.nrrd header, read as UTF-8 (as Slicer reads them)."""
    header = Path(path).read_bytes().partition(b"\n\n")[0].decode("utf-8")
    found = dict(re.findall(r"^Segment(\d+)_Name:=(.*)$", header, flags=re.M))
    return [found[k] for k in sorted(found, key=int)]


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
