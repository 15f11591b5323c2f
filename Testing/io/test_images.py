"""Reading volumes (NIfTI, NRRD, MetaImage, DICOM series) and writing labelmaps on their exact grid."""

import os
import stat

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio

from SegmentWithSAM2Lib.core.intensity import resolve_window
from SegmentWithSAM2Lib.core.prompts import ObjectInputs
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error
from SegmentWithSAM2Lib.io import volume_files as images
from SegmentWithSAM2Lib.io.labelmaps import check_output_path, write_labelmap
from SegmentWithSAM2Lib.io.volume_files import read_volume

from dicom_series import oblique_ct, write_ct_series
from support import oblique_lps_matrix

RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
MAGIC = {".nii.gz": b"\x1f\x8b", ".nrrd": b"NRRD", ".mha": b"ObjectType"}  # how each format's file begins


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


def saved_volume(folder, image=None, name="ct.nrrd"):
    image = oblique_image() if image is None else image
    sitk.WriteImage(image, str(folder / name))
    return image, read_volume(folder / name)


def labels_for(volume, values=(1, 2)):
    labels = np.zeros(volume.array.shape, dtype=np.uint8 if max(values) <= 255 else np.uint16)
    labels[1:4, 5:20, 10:30], labels[2, 25:35, 30:45] = values
    return labels


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_files_read_back_with_their_voxels_and_matrix(tmp_path, suffix):
    image = oblique_image()
    sitk.WriteImage(image, str(tmp_path / f"ct{suffix}"))
    volume = read_volume(tmp_path / f"ct{suffix}")
    assert volume.array.dtype == np.int16
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(image))
    np.testing.assert_allclose(volume.ijk_to_lps, oblique_lps_matrix(), atol=1e-5)
    np.testing.assert_allclose(volume.ijk_to_ras, RAS_FROM_LPS @ oblique_lps_matrix(), atol=1e-5)
    np.testing.assert_allclose(volume.spacing, [0.7, 1.3, 2.5], atol=1e-6)


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_a_single_time_point_stored_as_4d_reads_as_its_3d_volume(tmp_path, suffix):
    image = oblique_image(shape_kji=(3, 8, 10))
    sitk.WriteImage(sitk.JoinSeries([image]), str(tmp_path / f"t1{suffix}"))
    volume = read_volume(tmp_path / f"t1{suffix}")
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(image))
    np.testing.assert_allclose(volume.ijk_to_lps, oblique_lps_matrix(), atol=1e-5)


@pytest.mark.parametrize("window, expected", [((60, 160), (60.0, 160.0)),
                                              ("40\\-600", None), (None, None)])
def test_dicom_series_reads_geometry_modality_and_window(tmp_path, window, expected):
    image = oblique_ct()
    if window == "40\\-600":  # two windows (soft tissue, lung): the first is the default
        window, expected = ("40\\-600", "400\\1500"), (40.0, 400.0)
    volume = read_volume(write_ct_series(image, tmp_path / "series", window=window))
    assert volume.array.dtype == np.int16
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(image))
    np.testing.assert_allclose(volume.ijk_to_lps, images.ijk_to_lps_of(image), atol=1e-4)
    assert volume.metadata["modality"] == "CT" and volume.metadata.get("window") == expected
    chosen = resolve_window("auto", volume.array, volume.metadata)
    center, width = expected or (40.0, 400.0)  # without tags: the CT soft-tissue default
    assert (chosen.lower, chosen.upper) == (center - width / 2, center + width / 2)
    assert ("DICOM" in chosen.source) == (expected is not None)


def test_dicom_slices_are_ordered_by_position_not_by_file_name(tmp_path):
    image = oblique_ct()
    folder = write_ct_series(image, tmp_path / "series")
    files = sorted(folder.iterdir())
    for n, path in enumerate(files):
        path.rename(folder / f"img{len(files) - 1 - n:03d}.dcm")
    volume = read_volume(folder)
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(image))
    np.testing.assert_allclose(volume.ijk_to_lps, images.ijk_to_lps_of(image), atol=1e-4)


def test_a_folder_with_two_series_reads_the_larger_with_a_warning(tmp_path):
    small, large = oblique_ct(shape_kji=(3, 32, 40), seed=2), oblique_ct(shape_kji=(5, 32, 40), seed=3)
    write_ct_series(small, tmp_path / "mixed", series=1, prefix="a")
    write_ct_series(large, tmp_path / "mixed", series=2, prefix="b")
    with pytest.warns(UserWarning, match="holds 2 DICOM series; reading the largest"):
        volume = read_volume(tmp_path / "mixed")
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(large))


def test_reading_refuses_missing_unreadable_and_empty_inputs(tmp_path):
    with pytest.raises(SegmentWithSAM2Error, match="input not found"):
        read_volume(tmp_path / "absent.nii.gz")
    (tmp_path / "junk.nii.gz").write_bytes(b"not an image")
    with pytest.raises(SegmentWithSAM2Error, match="cannot read .*junk.nii.gz"):
        read_volume(tmp_path / "junk.nii.gz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SegmentWithSAM2Error, match="no DICOM series"):
        read_volume(tmp_path / "empty")
    rgb = sitk.Compose([sitk.Image([8, 8, 3], sitk.sitkUInt8)] * 3)
    sitk.WriteImage(rgb, str(tmp_path / "rgb.mha"))
    with pytest.raises(SegmentWithSAM2Error, match="3 components per voxel"):
        read_volume(tmp_path / "rgb.mha")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_labelmap_lands_on_the_input_grid(tmp_path, suffix):
    image, volume = saved_volume(tmp_path)
    labels = labels_for(volume)
    out = write_labelmap(labels, volume, tmp_path / f"seg{suffix}")
    written = sitk.ReadImage(str(out))
    same_grid(written, image)
    assert out.read_bytes().startswith(MAGIC[suffix]) and written.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), labels)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # as any new file, not owner-only


def test_a_volume_given_as_array_and_matrix_is_written_on_its_grid(tmp_path):
    ras = RAS_FROM_LPS @ oblique_lps_matrix()
    volume = Volume(np.zeros((6, 40, 48), np.int16), ras)
    labels = labels_for(volume)
    write_labelmap(labels, volume, tmp_path / "seg.nii.gz")
    written = read_volume(tmp_path / "seg.nii.gz")
    np.testing.assert_allclose(written.ijk_to_ras, ras, atol=1e-5)
    np.testing.assert_array_equal(written.array, labels)


def test_seg_nrrd_has_named_coloured_segments_on_the_grid(tmp_path):
    image, volume = saved_volume(tmp_path)
    labels = labels_for(volume, values=(4, 300))  # 300: past uint8
    objects = [ObjectInputs("liver", 4, (0.9, 0.5, 0.1)), ObjectInputs("lesion", 300, (0.1, 0.2, 0.9)),
               ObjectInputs("not found", 7, (0.3, 0.8, 0.3))]
    write_labelmap(labels, volume, tmp_path / "out.seg.nrrd", objects, {"model": "medsam2-latest"})
    seg = slicerio.read_segmentation(str(tmp_path / "out.seg.nrrd"))
    np.testing.assert_allclose(seg["ijkToLPS"], images.ijk_to_lps_of(image), atol=1e-9)
    assert seg["voxels"].shape[-3:] == image.GetSize()  # [i, j, k]
    by_name = {s["name"]: s for s in seg["segments"]}
    assert [s["name"] for s in seg["segments"]] == ["liver", "lesion", "not found"]
    assert by_name["liver"]["color"] == pytest.approx([0.9, 0.5, 0.1])
    assert by_name["lesion"]["color"] == pytest.approx([0.1, 0.2, 0.9])
    assert by_name["liver"]["tags"]["SegmentWithSAM2.model"] == "medsam2-latest"
    for name, label in (("liver", 4), ("lesion", 300), ("not found", 7)):
        segment = by_name[name]
        assert segment["labelValue"] == label  # the object's label, as in the .nii.gz output
        voxels = seg["voxels"] if seg["voxels"].ndim == 3 else seg["voxels"][segment["layer"]]
        mask_ijk = voxels == segment["labelValue"]
        np.testing.assert_array_equal(mask_ijk.transpose(2, 1, 0), labels == label)


def broken(*args, **kwargs):
    raise RuntimeError("disk full")


@pytest.mark.parametrize("suffix, module, writer", [(".nii.gz", images.sitk, "WriteImage"),
                                                    (".seg.nrrd", slicerio, "write_segmentation")])
def test_failed_write_keeps_the_existing_file_and_leaves_no_temporary(tmp_path, monkeypatch, suffix, module, writer):
    _, volume = saved_volume(tmp_path)
    target = tmp_path / f"seg{suffix}"
    target.write_bytes(b"previous result")
    monkeypatch.setattr(module, writer, broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_labelmap(labels_for(volume), volume, target, [ObjectInputs("liver", 1, (1, 0, 0))])
    assert target.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nrrd", target.name]


def test_writing_again_replaces_the_file_and_leaves_nothing_else(tmp_path):
    _, volume = saved_volume(tmp_path)
    target = tmp_path / "seg.nii.gz"
    target.write_bytes(b"previous result")
    write_labelmap(labels_for(volume), volume, target)
    np.testing.assert_array_equal(read_volume(target).array, labels_for(volume))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nrrd", "seg.nii.gz"]


def test_output_path_is_checked_before_any_work(tmp_path):
    with pytest.raises(SegmentWithSAM2Error, match="missing does not exist; create it first"):
        check_output_path(tmp_path / "missing" / "seg.nii.gz")
    for name in ("seg.png", "seg.mhd", "seg.nhdr"):  # detached headers would strand their data file
        with pytest.raises(SegmentWithSAM2Error, match=r"must end with one of \.seg\.nrrd, \.nii\.gz"):
            check_output_path(tmp_path / name)
    (tmp_path / "taken.nrrd").mkdir()
    with pytest.raises(SegmentWithSAM2Error, match="is a folder; give a file name"):
        check_output_path(tmp_path / "taken.nrrd")
    assert check_output_path(tmp_path / "seg.seg.nrrd") == tmp_path / "seg.seg.nrrd"
    assert check_output_path(tmp_path / "SEG.NII.GZ") == tmp_path / "SEG.NII.GZ"
