"""DICOM Segmentation objects (the ``[dicom]`` extra: highdicom, pydicom) from a labelmap on a DICOM
series' grid: one frame per source instance, matched by its position and orientation (never by
file or array order), segments numbered 1..N with each object's name and original label kept,
terminology codes per object (default Tissue), algorithm SEMIAUTOMATIC with the model and weights
hash; same Study and Frame of Reference as the source, new Series and SOP Instance UIDs.
BINARY by default (the most viewers read it); LABELMAP on request."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.prompt_fields import DEFAULT_TERMINOLOGY
from ..core.volume import Volume
from ..errors import Remedy, SegmentWithSAM2Error
from .atomic import write_atomic

INSTALL = "pip install 'segment-with-sam2[dicom]'"
_ALIGNMENT = 1e-3  # voxels: how far a source pixel may sit from a voxel centre of the labelmap


def _highdicom():
    try:
        import highdicom
        import pydicom
    except ImportError:
        raise SegmentWithSAM2Error("writing DICOM-SEG needs highdicom and pydicom, which are not installed",
                                   Remedy("install_package", INSTALL)) from None
    return highdicom, pydicom


def check_dicom_source(volume: Volume, path) -> None:
    """A DICOM-SEG references its source instances: refuse any other input before any work."""
    if not volume.metadata.get("dicom_files"):
        raise SegmentWithSAM2Error(f"{Path(path).name}: DICOM-SEG can only be written for a DICOM series input "
                                   "(it references the source images); write .seg.nrrd or .nii.gz instead")
    _highdicom()


def frames_of(labelmap: np.ndarray, volume: Volume, datasets) -> np.ndarray:
    """The labelmap as one frame per source dataset, in that dataset's own rows and columns."""
    to_ijk = np.linalg.inv(volume.ijk_to_lps)
    frames = []
    for ds in datasets:
        position = np.asarray(ds.ImagePositionPatient, dtype=float)
        cosines = np.asarray(ds.ImageOrientationPatient, dtype=float)
        row_step, col_step = (float(s) for s in ds.PixelSpacing)  # between rows, between columns (mm)
        origin = to_ijk[:3, :3] @ position + to_ijk[:3, 3]
        along_col = to_ijk[:3, :3] @ (cosines[:3] * col_step)  # one column to the right, in ijk
        along_row = to_ijk[:3, :3] @ (cosines[3:] * row_step)  # one row down, in ijk
        rows, cols = np.mgrid[0:int(ds.Rows), 0:int(ds.Columns)]
        ijk = origin + cols[..., None] * along_col + rows[..., None] * along_row
        index = np.rint(ijk).astype(int)
        inside = np.all((index >= 0) & (index < np.asarray(volume.shape_ijk)), axis=-1)
        if np.abs(ijk - index).max() > _ALIGNMENT or not inside.all():
            raise SegmentWithSAM2Error(f"source instance {ds.SOPInstanceUID} does not lie on the labelmap's voxel grid; "
                                       "the DICOM-SEG would be misaligned (was the series resampled?)")
        frames.append(labelmap[index[..., 2], index[..., 1], index[..., 0]])
    return np.stack(frames)


def write_dicom_seg(labelmap: np.ndarray, volume: Volume, path, objects, tags: dict, seg_type: str = "binary") -> Path:
    """Write the SEG complete or not at all; read back and checked before it takes its name."""
    hd, pydicom = _highdicom()
    check_dicom_source(volume, path)
    datasets = [pydicom.dcmread(f) for f in volume.metadata["dicom_files"]]
    frames = frames_of(labelmap, volume, datasets)
    present = [obj for obj in objects if (frames == obj.label).any()]
    if not present:
        raise SegmentWithSAM2Error(f"{Path(path).name}: every object is empty; a DICOM-SEG needs at least one segment")
    # BINARY needs segments 1..N: renumber, keeping the original label in the segment's tracking id
    numbered = np.zeros(frames.shape, np.uint16)
    for number, obj in enumerate(present, start=1):
        numbered[frames == obj.label] = number
    seg = hd.seg.Segmentation(
        source_images=datasets, pixel_array=numbered if seg_type == "labelmap" else _binary(numbered, len(present)),
        segmentation_type=hd.seg.SegmentationTypeValues.LABELMAP if seg_type == "labelmap"
        else hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_description(hd, n, obj, tags) for n, obj in enumerate(present, start=1)],
        series_instance_uid=hd.UID(), series_number=_series_number(datasets), sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="SegmentWithSAM2", manufacturer_model_name=str(tags.get("model", "")),
        software_versions=str(tags.get("version", "")), device_serial_number="none",
        series_description=f"SAM2 {tags.get('model', '')}"[:64], omit_empty_frames=True)
    return write_atomic(path, lambda temporary: seg.save_as(temporary), suffix=".dcm",
                        check=lambda temporary: _check_seg(temporary, path, seg, pydicom))


def _binary(numbered: np.ndarray, count: int) -> np.ndarray:
    """frames x rows x columns x segments, one boolean plane per segment (highdicom's BINARY input)."""
    return np.stack([numbered == n for n in range(1, count + 1)], axis=-1)


def _description(hd, number: int, obj, tags: dict):
    from pydicom.sr.coding import Code

    terms = obj.terminology or DEFAULT_TERMINOLOGY
    code = lambda key: Code(terms[key][1], terms[key][0], terms[key][2])  # noqa: E731  (value, scheme, meaning)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=f"SegmentWithSAM2 {tags.get('model', '')}"[:64], version=str(tags.get("version", "")),
        family=Code("123109", "DCM", "Manual Processing"),
        parameters={"weights_sha256": str(tags.get("weights", ""))[:64], "label": str(obj.label)})
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=obj.name[:64], segmented_property_category=code("category"),
        segmented_property_type=code("type"), algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
        algorithm_identification=algorithm, tracking_uid=hd.UID(), tracking_id=f"label {obj.label}",
        anatomic_regions=[code("anatomicRegion")] if "anatomicRegion" in terms else None)


def _series_number(datasets) -> int:
    numbers = [int(ds.SeriesNumber) for ds in datasets if getattr(ds, "SeriesNumber", None) not in (None, "")]
    return (max(numbers) if numbers else 0) + 1000  # beside the source series, not over it


def _check_seg(temporary: Path, path, seg, pydicom) -> None:
    """What reached the disk reads back as the SEG that was made: its class, segments and pixels."""
    try:
        back = pydicom.dcmread(temporary)
        same = back.SOPClassUID == seg.SOPClassUID and len(back.SegmentSequence) == len(seg.SegmentSequence) \
            and back.PixelData == seg.PixelData
    except Exception:  # noqa: BLE001  (any unreadable file is a failed write)
        same = False
    if not same:
        raise SegmentWithSAM2Error(f"could not write {path}: the file does not read back as a DICOM-SEG "
                                   "(a full disk?); nothing was written")
