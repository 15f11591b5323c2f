"""The command line end to end on real files (random seeded weights), and its bad-input errors:
exit status 1, one line on stderr starting with "error:", and nothing written."""

import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from SegmentWithSAM2Lib.cli import main
from SegmentWithSAM2Lib.core.model import build_predictor
from SegmentWithSAM2Lib.core.registry import resolve_config
from SegmentWithSAM2Lib.io.images import read_volume

from dicom_series import right_handed_oblique, write_ct_series
from test_images import oblique_image, same_grid

RANDOM = ["--random-init", "--seed", "0", "--precision", "fp32", "--device", "cpu"]


def prompt_file(folder, space, position, name="prompts.json"):
    path = folder / name
    path.write_text(json.dumps({"space": space, "objects": [
        {"name": "lesion", "label": 2, "color": [1, 0.5, 0], "points": [{"position": list(position), "positive": True}]}]}))
    return path


def centre_in(space, image):
    ijk = [image.GetWidth() // 2, image.GetHeight() // 2, image.GetDepth() // 2]
    lps = image.TransformIndexToPhysicalPoint(ijk)
    return {"IJK": ijk, "LPS": lps, "RAS": (-lps[0], -lps[1], lps[2])}[space]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("source, output, space", [
    ("ct.nii.gz", "seg.nii.gz", "RAS"), ("ct.nrrd", "seg.seg.nrrd", "LPS"),
    ("ct.mha", "seg.nrrd", "IJK"), ("dicom", "seg.nii.gz", "RAS")])
def test_segment_writes_a_labelmap_on_the_input_grid(tmp_path, capsys, source, output, space):
    image = oblique_image(shape_kji=(5, 40, 48))
    if source == "dicom":
        origin, spacing, direction = right_handed_oblique()
        image.SetOrigin(origin), image.SetSpacing(spacing), image.SetDirection(direction)
        write_ct_series(image, tmp_path / source)
    else:
        sitk.WriteImage(image, str(tmp_path / source))
    prompts = prompt_file(tmp_path, space, centre_in(space, image))
    code, errors = run(["segment", tmp_path / source, "--prompts", prompts, "--output", tmp_path / output,
                        "--axis", "k", "--window", "40,400", "--range", "1:3", *RANDOM], capsys)
    assert (code, errors) == (0, [])
    volume = read_volume(tmp_path / source)
    written = read_volume(tmp_path / output) if output != "seg.seg.nrrd" else None
    if written is not None:
        assert written.array.shape == volume.array.shape and set(np.unique(written.array)) <= {0, 2}
        same_grid(sitk.ReadImage(str(tmp_path / output)), sitk.ReadImage(str(tmp_path / source))
                  if source != "dicom" else image, tol=1e-4)
    else:
        import slicerio

        seg = slicerio.read_segmentation(str(tmp_path / output))
        np.testing.assert_allclose(seg["ijkToLPS"], volume.ijk_to_lps, atol=1e-9)
        assert [s["name"] for s in seg["segments"]] == ["lesion"]


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:-1]}
    for size in ("tiny", "small", "base-plus", "large"):
        assert rows[f"sam2-hiera-{size}"][1] == "1024" and rows[f"sam2.1-hiera-{size}"][1] == "1024"
    assert rows["medsam2-latest"][1] == "512" and rows["medsam2-latest"][3] == "medsam2_512.yaml"


@pytest.fixture
def inputs(tmp_path):
    image = oblique_image(shape_kji=(4, 24, 32))
    sitk.WriteImage(image, str(tmp_path / "ct.nii.gz"))
    return tmp_path, image, prompt_file(tmp_path, "IJK", (10, 10, 2))


def write_array(path, array):
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    return path


@pytest.fixture(scope="module")
def other_config_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("other") / "sam2_tiny.pt"
    torch.save({"model": build_predictor(resolve_config("configs/sam2/sam2_hiera_t.yaml")).state_dict()}, path)
    return path


def bad_cases(folder, image, prompts, other_checkpoint):
    """(description, argv changes, words the error line must hold)."""
    (folder / "corrupt.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    (folder / "broken.json").write_text('{"space": "RAS", "objects": [')
    stack4d = sitk.JoinSeries([sitk.GetImageFromArray(np.ones((3, 8, 8), np.int16) * t) for t in range(2)])
    sitk.WriteImage(stack4d, str(folder / "4d.nii.gz"))
    constant = write_array(folder / "constant.nii.gz", np.full((4, 16, 16), 7, np.int16))
    flat = write_array(folder / "flat.nii.gz", np.arange(64, dtype=np.int16).reshape(8, 8))
    outside = prompt_file(folder, "IJK", (500, 10, 2), name="outside.json")
    return [
        ("2D", {"image": flat}, ["2D", "3D volume"]),
        ("4D", {"image": folder / "4d.nii.gz"}, ["4 dimensions"]),
        ("constant", {"image": constant}, ["constant"]),
        ("unknown model", {"model": ["--model", "nope"]}, ["unknown model 'nope'"]),
        ("missing checkpoint", {"model": ["--checkpoint", folder / "absent.pt", "--config", "medsam2_512.yaml"]},
         ["checkpoint not found"]),
        ("corrupt checkpoint", {"model": ["--checkpoint", folder / "corrupt.pt", "--config", "medsam2_512.yaml"]},
         ["not a readable PyTorch checkpoint"]),
        ("other config", {"model": ["--checkpoint", other_checkpoint, "--config", "medsam2_512.yaml"]},
         ["missing keys", "no_obj_embed_spatial", "configs/sam2/sam2_hiera_t.yaml"]),
        ("outside", {"prompts": outside}, ["outside the volume"]),
        ("malformed JSON", {"prompts": folder / "broken.json"}, ["not valid JSON", "line 1"]),
        ("no output folder", {"output": folder / "missing" / "seg.nii.gz"}, ["does not exist"]),
    ]


def test_bad_input_gives_one_clear_line_and_writes_nothing(inputs, capsys, other_config_checkpoint):
    folder, image, prompts = inputs
    for what, change, words in bad_cases(folder, image, prompts, other_config_checkpoint):
        before = sorted(p.name for p in folder.rglob("*"))
        output = change.get("output", folder / "seg.nii.gz")
        model = change.get("model", ["--random-init", "--seed", "0"])
        argv = ["segment", change.get("image", folder / "ct.nii.gz"), "--prompts", change.get("prompts", prompts),
                "--output", output, *model, "--device", "cpu", "--precision", "fp32"]
        code, errors = run(argv, capsys)
        assert code == 1 and len(errors) == 1, (what, errors)
        for word in words:
            assert word in errors[0], (what, errors[0])
        assert sorted(p.name for p in folder.rglob("*")) == before, what
