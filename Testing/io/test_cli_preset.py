"""``--preset medsam2`` on the command line: the labelmap it writes is the API's
``segment(..., preset="medsam2")``; ``--auto-stop`` turns the stop back on under the preset; its
parts on their own (``--window medsam2:...``, ``--keep-largest-component``, ``--fill-holes-px``)."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from SegmentWithSAM2Lib import api
from SegmentWithSAM2Lib.cli import main
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.io.models import load_model

MICRO = ["--model", "micro", "--random-init", "--seed", "4", "--precision", "fp32", "--device", "cpu"]


@pytest.fixture
def case(tmp_path):
    rng = np.random.default_rng(2)
    array = (rng.normal(-700, 200, (7, 64, 64))).astype(np.int16)
    array[2:5, 20:40, 24:44] = 60
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.8, 0.8, 2.5))
    sitk.WriteImage(image, str(tmp_path / "ct.nii.gz"))
    prompts = {"space": "IJK", "objects": [{"name": "mass", "label": 1,
                                            "boxes": [{"corner1": [22, 18, 3], "corner2": [46, 42, 3]}]}]}
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    return tmp_path, prompts


def labels_of(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def segment(folder, out, *extra):
    return main(["segment", str(folder / "ct.nii.gz"), "--prompts", str(folder / "prompts.json"), "--output",
                 str(folder / out), *MICRO, *extra])


def test_the_preset_writes_what_the_api_returns(case, capsys):
    folder, prompts = case
    assert segment(folder, "preset.nii.gz", "--preset", "medsam2", "--window", "-600,1500") == 0
    assert "medsam2: clipped to -1350..150" in capsys.readouterr().err
    model = load_model("micro", random_init=True, seed=4, device="cpu", precision="fp32")
    expected = api.segment(model, folder / "ct.nii.gz", prompts, preset="medsam2", window="-600,1500")
    assert np.array_equal(labels_of(folder / "preset.nii.gz"), expected.labelmap)
    assert expected.slices_processed == {"forward": 4, "backward": 4}  # no automatic stop under the preset
    parts = api.segment(model, folder / "ct.nii.gz", prompts, window="medsam2:-600,1500", auto_stop=False,
                        postprocess=None, keep_largest_component=True, fill_holes_px=8)
    assert np.array_equal(parts.labelmap, expected.labelmap)  # the preset is exactly its parts


def test_auto_stop_given_is_kept_under_the_preset(case):
    folder, prompts = case
    model = load_model("micro", random_init=True, seed=4, device="cpu", precision="fp32")
    stopped = api.segment(model, folder / "ct.nii.gz", prompts, preset="medsam2", auto_stop=True)
    assert stopped.settings["auto_stop"] is True and stopped.settings["keep_largest_component"]
    assert segment(folder, "stop.nii.gz", "--preset", "medsam2", "--auto-stop") == 0
    assert np.array_equal(labels_of(folder / "stop.nii.gz"), stopped.labelmap)


@pytest.mark.parametrize("argv, message", [(["--preset", "medsam3"], "did you mean 'medsam2'"),
                                           (["--fill-holes-px", "-1"], "0 or more")])
def test_bad_preset_options_are_refused(case, capsys, argv, message):
    folder, _ = case
    with pytest.raises(SystemExit) as exit_:
        segment(folder, "bad.nii.gz", *argv)
    assert exit_.value.code == 1
    assert message in capsys.readouterr().err and not (folder / "bad.nii.gz").exists()
