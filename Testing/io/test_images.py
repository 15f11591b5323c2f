"""Reading volumes (NIfTI, NRRD, MetaImage, DICOM series) and writing labelmaps on their exact grid."""

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio

from SegmentWithSAM2Lib.core.intensity import resolve_window
from SegmentWithSAM2Lib.core.prompts import ObjectInputs
from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error
from SegmentWithSAM2Lib.io import images
from SegmentWithSAM2Lib.io.images import check_output_path, read_volume, write_labelmap

from dicom_series import right_handed_oblique, write_ct_series
from support import oblique_lps_matrix


def oblique_image(shape_kji=(6, 40, 48), lps=None, seed=0) -> sitk.Image:
    lps = oblique_lps_matrix() if lps is None else lps
    array = np.random.default_rng(seed).integers(-1000, 1500, shape_kji).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    image.SetSpacing(tuple(spacing))
    image.SetDirection(tuple((lps[:3, :3] / spacing).ravel()))
    image.SetOrigin(tuple(lps[:3, 3]))
    return image


def same_grid(a: sitk.Image, b: sitk.Image, tol=1e-9):
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=tol)
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=tol)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_files_read_back_with_their_voxels_and_matrix(tmp_path, suffix):
    image = oblique_image()
    sitk.WriteImage(image, str(tmp_path / f"ct{suffix}"))
    volume = read_volume(tmp_path / f"ct{suffix}")
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(image))
    np.testing.assert_allclose(volume.ijk_to_lps, oblique_lps_matrix(), atol=1e-5)
    ras = np.diag([-1, -1, 1, 1]) @ oblique_lps_matrix()
    np.testing.assert_allclose(volume.ijk_to_ras, ras, atol=1e-5)


def test_dicom_series_reads_geometry_modality_and_window(tmp_path):
    image = sitk.GetImageFromArray(np.random.default_rng(1).integers(-900, 900, (5, 32, 40)).astype(np.int16))
    origin, spacing, direction = right_handed_oblique()
    image.SetOrigin(origin), image.SetSpacing(spacing), image.SetDirection(direction)
    folder = write_ct_series(image, tmp_path / "series", window=(60, 160))
    volume = read_volume(folder)
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(image))
    np.testing.assert_allclose(volume.ijk_to_lps, images.ijk_to_lps_of(image), atol=1e-4)
    assert volume.metadata["modality"] == "CT" and volume.metadata["window"] == (60.0, 160.0)
    window = resolve_window("auto", volume.array, volume.metadata)
    assert (window.lower, window.upper, window.source) == (-20.0, 140.0, "DICOM window tags")


def test_reading_refuses_missing_unreadable_and_empty_inputs(tmp_path):
    with pytest.raises(SegmentWithSAM2Error, match="input not found"):
        read_volume(tmp_path / "absent.nii.gz")
    (tmp_path / "junk.nii.gz").write_bytes(b"not an image")
    with pytest.raises(SegmentWithSAM2Error, match="cannot read .*junk.nii.gz"):
        read_volume(tmp_path / "junk.nii.gz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SegmentWithSAM2Error, match="no DICOM series"):
        read_volume(tmp_path / "empty")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_labelmap_lands_on_the_input_grid(tmp_path, suffix):
    image = oblique_image()
    sitk.WriteImage(image, str(tmp_path / "ct.nrrd"))
    volume = read_volume(tmp_path / "ct.nrrd")
    labels = np.zeros(volume.array.shape, dtype=np.uint8)
    labels[2, 5:20, 10:30], labels[3, 22:30, 31:40] = 1, 2
    out = write_labelmap(labels, volume, tmp_path / f"seg{suffix}")
    written = sitk.ReadImage(str(out))
    same_grid(written, image)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), labels)


def test_seg_nrrd_has_named_coloured_segments_on_the_grid(tmp_path):
    image = oblique_image()
    sitk.WriteImage(image, str(tmp_path / "ct.nrrd"))
    volume = read_volume(tmp_path / "ct.nrrd")
    labels = np.zeros(volume.array.shape, dtype=np.uint8)
    labels[1:4, 5:20, 10:30], labels[2, 25:35, 30:45] = 4, 9
    objects = [ObjectInputs("liver", 4, (0.9, 0.5, 0.1)), ObjectInputs("lesion", 9, (0.1, 0.2, 0.9))]
    write_labelmap(labels, volume, tmp_path / "out.seg.nrrd", objects, {"model": "medsam2-latest"})
    seg = slicerio.read_segmentation(str(tmp_path / "out.seg.nrrd"))
    np.testing.assert_allclose(seg["ijkToLPS"], images.ijk_to_lps_of(image), atol=1e-9)
    by_name = {s["name"]: s for s in seg["segments"]}
    assert set(by_name) == {"liver", "lesion"}
    assert by_name["lesion"]["color"] == pytest.approx([0.1, 0.2, 0.9])
    assert by_name["liver"]["tags"]["SegmentWithSAM2.model"] == "medsam2-latest"
    for name, label in (("liver", 4), ("lesion", 9)):
        voxels = seg["voxels"] if seg["voxels"].ndim == 3 else seg["voxels"][by_name[name]["layer"]]
        mask_ijk = voxels == by_name[name]["labelValue"]
        np.testing.assert_array_equal(mask_ijk.transpose(2, 1, 0), labels == label)


def test_failed_write_keeps_the_existing_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    image = oblique_image()
    sitk.WriteImage(image, str(tmp_path / "ct.nrrd"))
    volume = read_volume(tmp_path / "ct.nrrd")
    target = tmp_path / "seg.nii.gz"
    target.write_bytes(b"previous result")

    def broken_writer(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(images.sitk, "WriteImage", broken_writer)
    with pytest.raises(RuntimeError, match="disk full"):
        write_labelmap(np.zeros(volume.array.shape, np.uint8), volume, target)
    assert target.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nrrd", "seg.nii.gz"]


def test_output_path_is_checked_before_any_work(tmp_path):
    with pytest.raises(SegmentWithSAM2Error, match="does not exist; create it first"):
        check_output_path(tmp_path / "missing" / "seg.nii.gz")
    with pytest.raises(SegmentWithSAM2Error, match="must end with one of"):
        check_output_path(tmp_path / "seg.png")
    assert check_output_path(tmp_path / "seg.seg.nrrd") == tmp_path / "seg.seg.nrrd"
