"""The real sample scans (pyradiomics 3.0.1's data/): verified by the archive's SHA-256, extracted
once, a wrong archive deleted. The archive here is one built in the same layout (tests never use
the network); the fetch itself is pip's."""

import io
import tarfile

import pytest

from SegmentWithSAM2Lib.errors import DownloadError, SegmentWithSAM2Error
from SegmentWithSAM2Lib.io import sample_data
from SegmentWithSAM2Lib.io.hashing import sha256_of


def archive_in(folder):
    folder.mkdir()
    with tarfile.open(folder / sample_data.ARCHIVE, "w:gz") as tar:
        for name, data in (("lung2_image.nrrd", b"image bytes"), ("lung2_label.nrrd", b"label bytes")):
            info = tarfile.TarInfo(f"pyradiomics-3.0.1/data/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return folder / sample_data.ARCHIVE


def test_a_verified_archive_gives_the_case_files_once(tmp_path, monkeypatch):
    archive = archive_in(tmp_path / "cache")
    monkeypatch.setattr(sample_data, "SHA256", sha256_of(archive))
    image, label = sample_data.pyradiomics_case("lung2", tmp_path / "cache")
    assert (image.read_bytes(), label.read_bytes()) == (b"image bytes", b"label bytes")
    archive.unlink()  # extracted: the archive is not needed again
    assert sample_data.pyradiomics_case("lung2", tmp_path / "cache") == (image, label)


def test_a_wrong_archive_is_deleted_and_nothing_extracted(tmp_path):
    archive = archive_in(tmp_path / "cache")
    with pytest.raises(DownloadError, match="not pyradiomics==3.0.1's 47c57f44.*it was deleted"):
        sample_data.pyradiomics_case("lung2", tmp_path / "cache")
    assert not archive.exists() and not (tmp_path / "cache" / "lung2_image.nrrd").exists()


def test_an_unknown_case_names_the_known_ones(tmp_path):
    with pytest.raises(SegmentWithSAM2Error, match="no pyradiomics case 'lung3'; the archive holds brain1, brain2"):
        sample_data.pyradiomics_case("lung3", tmp_path)


def test_the_lung2_demo_writes_a_seg_nrrd_and_an_overlay_from_the_archive(tmp_path, monkeypatch, capsys):
    """`demo --sample lung2` end to end from an archive in pyradiomics' layout holding a small
    real NRRD CT and its label (the real one is fetched by pip on first use)."""
    import SimpleITK as sitk
    import slicerio

    from SegmentWithSAM2Lib.cli import main
    from SegmentWithSAM2Lib.io.model_zoo import CACHE_ENV
    from SegmentWithSAM2Lib.synthetic import demo_ct

    volume, truth = demo_ct((16, 64, 64))
    folder = tmp_path / "cache" / "pyradiomics-3.0.1"
    folder.mkdir(parents=True)
    with tarfile.open(folder / sample_data.ARCHIVE, "w:gz") as tar:
        for name, array in (("lung2_image.nrrd", volume.array), ("lung2_label.nrrd", truth)):
            image = sitk.GetImageFromArray(array)
            image.SetSpacing(tuple(float(s) for s in volume.spacing))
            sitk.WriteImage(image, str(tmp_path / name))
            tar.add(tmp_path / name, arcname=f"pyradiomics-3.0.1/data/{name}")
    monkeypatch.setattr(sample_data, "SHA256", sha256_of(folder / sample_data.ARCHIVE))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert main(["demo", "--sample", "lung2", "--model", "micro", "--device", "cpu", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'lung2_seg.seg.nrrd'} and {out / 'overlay.png'}" in printed
    assert "Dice against the sample's known label: " in printed and not (out / "sample_ct.nrrd").exists()
    segmentation = slicerio.read_segmentation(str(out / "lung2_seg.seg.nrrd"))
    assert [s["name"] for s in segmentation["segments"]] == ["tumour"]
