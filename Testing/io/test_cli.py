"""The command line end to end on real files (random seeded weights), and its bad-input errors:
exit status 1, one line on stderr starting with "error:", and nothing written."""

import json

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio
import torch

from SegmentWithSAM2Lib.cli import main
from SegmentWithSAM2Lib.core.model import build_predictor
from SegmentWithSAM2Lib.io.model_zoo import resolve_config
from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error
from SegmentWithSAM2Lib.io.volume_files import read_volume
from SegmentWithSAM2Lib.io.prompt_file import read_prompt_file

from dicom_series import oblique_ct, write_ct_series
from test_images import oblique_image, same_grid

RANDOM = ["--random-init", "--seed", "0", "--precision", "fp32", "--device", "cpu"]
SPACES = ("IJK", "LPS", "RAS")
LESION = {"name": "lesion", "label": 2, "color": [1, 0.5, 0]}


def write_prompts(folder, space, points=(), boxes=(), name="prompts.json", **fields):
    path = folder / name
    obj = dict(LESION, points=[{"position": list(p), "positive": True} for p in points],
               boxes=[{"corner1": list(a), "corner2": list(b)} for a, b in boxes], **fields)
    path.write_text(json.dumps({"space": space, "objects": [obj]}))
    return path


def position_in(space, image, ijk):
    lps = image.TransformIndexToPhysicalPoint([int(c) for c in ijk])
    return {"IJK": list(ijk), "LPS": list(lps), "RAS": [-lps[0], -lps[1], lps[2]]}[space]


def voxel_if_read_as(space, position, image):
    """Where ``position`` lands when taken to be in ``space`` (continuous i, j, k)."""
    position = [float(c) for c in position]
    lps = {"IJK": image.TransformContinuousIndexToPhysicalPoint(position), "LPS": position,
           "RAS": [-position[0], -position[1], position[2]]}[space]
    return np.array(image.TransformPhysicalPointToContinuousIndex(lps))


def inside(ijk, image) -> bool:
    return bool(np.all((ijk >= -0.5) & (ijk <= np.array(image.GetSize()) - 0.5)))


def run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, [line for line in captured.err.splitlines() if line.startswith("error:")]


def input_image(folder, source) -> sitk.Image:
    """Writes the input as ``source`` (a file name, or "dicom" for a series folder); returns its grid."""
    if source == "dicom":
        image = oblique_ct(shape_kji=(5, 40, 48))
        write_ct_series(image, folder / source)
        return image
    image = oblique_image(shape_kji=(5, 40, 48))
    sitk.WriteImage(image, str(folder / source))
    return image


def output_labels(path, image):
    """The written labelmap as [k, j, i] labels, after checking it lies on the input's grid."""
    if path.name.endswith(".seg.nrrd"):
        seg = slicerio.read_segmentation(str(path))
        np.testing.assert_allclose(seg["ijkToLPS"][:3, :3], np.reshape(image.GetDirection(), (3, 3)) *
                                   image.GetSpacing(), atol=1e-4)
        np.testing.assert_allclose(seg["ijkToLPS"][:3, 3], image.GetOrigin(), atol=1e-4)
        assert [(s["name"], s["color"]) for s in seg["segments"]] == [("lesion", [1.0, 0.5, 0.0])]
        return (seg["voxels"] == seg["segments"][0]["labelValue"]).transpose(2, 1, 0) * 2
    written = sitk.ReadImage(str(path))
    same_grid(written, image, tol=1e-4)
    return sitk.GetArrayFromImage(written)


# Prompts sit on slice k = 2 of 5; --axis k makes the slices the k index, so --range and --direction
# say exactly which slices may hold labels.  Each case costs 2-4 slices of the 512-px model.
@pytest.mark.parametrize("source, output, space, options, allowed", [
    ("ct.nii.gz", "seg.nii.gz", "RAS", ["--range", "1:3"], [1, 2, 3]),
    ("ct.nrrd", "seg.seg.nrrd", "LPS", ["--range", "0:3", "--direction", "forward"], [2, 3]),
    ("ct.mha", "seg.nrrd", "IJK", ["--range", "1:4", "--direction", "backward"], [1, 2]),
    ("dicom", "seg.nii.gz", "RAS", ["--range", "1:3", "--direction", "forward"], [2, 3])])
def test_segment_writes_a_labelmap_on_the_input_grid(tmp_path, capsys, source, output, space, options, allowed):
    image = input_image(tmp_path, source)
    point = position_in(space, image, (30, 12, 2))
    box = [position_in(space, image, corner) for corner in ((14, 10, 2), (34, 30, 2))]
    for position in (point, *box):  # a mix-up of spaces would put the prompts outside the volume
        assert [inside(voxel_if_read_as(s, position, image), image) for s in SPACES] == [s == space for s in SPACES]
    prompts = write_prompts(tmp_path, space, points=[point], boxes=[box] if space == "RAS" else ())
    code, errors = run(["segment", tmp_path / source, "--prompts", prompts, "--output", tmp_path / output,
                        "--axis", "k", "--window", "40,400", *options, *RANDOM], capsys)
    assert (code, errors) == (0, [])
    labels = output_labels(tmp_path / output, image)
    assert labels.shape == read_volume(tmp_path / source).array.shape == (5, 40, 48)
    assert set(np.unique(labels)) <= {0, 2}
    outside = [k for k in range(5) if k not in allowed]
    assert not labels[outside].any(), "labels outside the range or direction asked for"
    assert labels[2].any()  # seeded random weights do label the prompted slice: the check above is not vacuous


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:-1]}
    for family, prefix in (("sam2", "sam2_hiera"), ("sam2.1", "sam2.1_hiera")):
        for size, short in (("tiny", "t"), ("small", "s"), ("base-plus", "b+"), ("large", "l")):
            image_size, cached, state, config = rows[f"{family}-hiera-{size}"][1:]
            assert (image_size, config) == ("1024", f"configs/{family}/{prefix}_{short}.yaml")
            assert (cached == "-") == (state == "absent")
    assert rows["medsam2-latest"][1] == "512" and rows["medsam2-latest"][4] == "medsam2_512.yaml"


# Bad input: each case returns (changes to the base command, words its error line must hold).
def write_array(path, array):
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    return path


def write_text(path, text):
    path.write_text(text)
    return path


def random_bytes(path):
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


def other_config_checkpoint(folder):
    torch.manual_seed(0)
    state = build_predictor(resolve_config("configs/sam2/sam2_hiera_t.yaml")).state_dict()
    torch.save({"model": state}, folder / "sam2_tiny.pt")
    return ["--checkpoint", folder / "sam2_tiny.pt", "--config", "medsam2_512.yaml"]


def four_d(folder):
    series = sitk.JoinSeries([sitk.GetImageFromArray(np.ones((3, 8, 8), np.int16) * t) for t in range(2)])
    sitk.WriteImage(series, str(folder / "4d.nrrd"))
    return {"image": folder / "4d.nrrd"}


EMPTY_MHA = "ObjectType = Image\nNDims = 3\nDimSize = 16 16 0\nElementType = MET_SHORT\nElementDataFile = LOCAL\n"
BAD = {
    "2D": (lambda f: {"image": write_array(f / "flat.nii.gz", np.arange(64, dtype=np.int16).reshape(8, 8))},
           ["2D", "3D volume"]),
    "4D": (four_d, ["4 dimensions", "single 3D volume"]),
    "constant": (lambda f: {"image": write_array(f / "flat.nrrd", np.full((4, 16, 16), 7, np.int16))},
                 ["volume is constant"]),
    "empty": (lambda f: {"image": write_text(f / "empty.mha", EMPTY_MHA)}, ["volume is empty"]),
    "unknown model": (lambda f: {"model": ["--model", "nope"]}, ["unknown model 'nope'", "medsam2-latest"]),
    "missing checkpoint": (lambda f: {"model": ["--checkpoint", "/nonexistent.pt", "--config", "medsam2_512.yaml"]},
                           ["checkpoint not found", "/nonexistent.pt"]),
    "corrupt checkpoint": (lambda f: {"model": ["--checkpoint", random_bytes(f / "bad.pt"),
                                                "--config", "medsam2_512.yaml"]},
                           ["bad.pt is not a readable PyTorch checkpoint"]),
    "other config": (lambda f: {"model": other_config_checkpoint(f)},
                     ["missing keys", "no_obj_embed_spatial", "configs/sam2/sam2_hiera_t.yaml"]),
    "outside": (lambda f: {"prompts": write_prompts(f, "IJK", [(500, 10, 2)], name="far.json")},
                ["'lesion' point #1", "outside the volume"]),
    # checked before the model is loaded: a bad prompt file must not wait for a load or a download
    "outside, model not downloaded": (lambda f: {"prompts": write_prompts(f, "IJK", [(500, 10, 2)], name="far.json"),
                                                 "model": ["--model", "medsam2-latest"]},
                                      ["'lesion' point #1", "outside the volume"]),
    "malformed JSON": (lambda f: {"prompts": write_text(f / "cut.json", '{"space": "RAS", "objects": [')},
                       ["not valid JSON", "line 1, column 30"]),
    "objects not a list": (lambda f: {"prompts": write_text(f / "obj.json", '{"space": "RAS", "objects": {}}')},
                           ["'objects' must be a list"]),
    "mask label": (lambda f: {"prompts": write_prompts(f, "IJK", name="m.json", masks=[
        {"file": "ct.nii.gz", "slice": 1, "label": "liver"}])}, ["'label' must be the integer label value", "'liver'"]),
    "no output folder": (lambda f: {"output": f / "missing" / "seg.nii.gz"}, ["missing does not exist"]),
    "detached header": (lambda f: {"output": f / "seg.mhd"}, ["seg.mhd must end with one of", ".mha"]),
    "output is input": (lambda f: {"output": f / "ct.nii.gz"}, ["is the input"]),
}


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_gives_one_clear_line_and_writes_nothing(tmp_path, capsys, case):
    sitk.WriteImage(oblique_image(shape_kji=(4, 24, 32)), str(tmp_path / "ct.nii.gz"))
    make, words = BAD[case]
    change = make(tmp_path)
    argv = ["segment", change.get("image", tmp_path / "ct.nii.gz"),
            "--prompts", change.get("prompts", write_prompts(tmp_path, "IJK", [(10, 10, 2)])),
            "--output", change.get("output", tmp_path / "seg.nii.gz"),
            *change.get("model", ["--random-init"]), "--device", "cpu", "--precision", "fp32"]
    before = snapshot(tmp_path)
    code, errors = run(argv, capsys)
    assert code == 1 and len(errors) == 1, errors
    for word in words:
        assert word in errors[0]
    assert snapshot(tmp_path) == before  # no output, no temporary, input untouched


# The prompt file itself.
def test_prompt_file_with_a_byte_order_mark_is_read(tmp_path, oblique_volume):
    text = json.dumps({"space": "LPS", "objects": [dict(LESION, points=[{"position": [1, 2, 3]}])]})
    (tmp_path / "p.json").write_bytes(b"\xef\xbb\xbf" + text.encode())  # as Windows Notepad saves UTF-8
    assert read_prompt_file(tmp_path / "p.json", oblique_volume)["objects"][0]["points"][0]["position"] == [1, 2, 3]


def test_mask_prompts_are_loaded_from_labelmaps_on_the_grid(tmp_path, oblique_volume):
    labels = np.zeros(oblique_volume.array.shape, np.uint8)
    labels[3, 10:20, 5:15] = 4
    sitk.WriteImage(image_like(sitk.GetImageFromArray(labels), oblique_volume), str(tmp_path / "mask.nrrd"))
    prompts = write_prompts(tmp_path, "IJK", masks=[{"file": "mask.nrrd", "label": 4.0, "slice": 3}])
    mask = read_prompt_file(prompts, oblique_volume)["objects"][0]["masks"][0]
    assert mask["slice"] == 3 and mask["mask"].dtype == bool
    np.testing.assert_array_equal(mask["mask"], labels == 4)
    sitk.WriteImage(sitk.GetImageFromArray(labels), str(tmp_path / "mask.nrrd"))  # identity grid: not the volume's
    with pytest.raises(SegmentWithSAM2Error, match="mask file mask.nrrd is not on the image's voxel grid"):
        read_prompt_file(prompts, oblique_volume)


def image_like(image, volume):
    lps = volume.ijk_to_lps
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    image.SetOrigin(tuple(lps[:3, 3]))
    image.SetSpacing(tuple(spacing))
    image.SetDirection(tuple((lps[:3, :3] / spacing).ravel()))
    return image
