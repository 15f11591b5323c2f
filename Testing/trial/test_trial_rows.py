"""The BAD rows of the new-user trial (../shared/reviews/new-user-trial.md), one case per row,
named after it: each must exit 1 (or raise, for the API) with one line naming the offending
input, leave no output and no hidden file, and leave every input byte for byte as it was."""

from __future__ import annotations

import os
import re
import signal

import numpy as np

import pytest

from cases import CHECKPOINT, MODEL, Case, ct_volume, download_zoo, prompt_file, run_cli, segment_case, sha256
from http_server import CheckpointServer

ROWS = {}


def row(name):
    def register(builder):
        ROWS[name] = builder
        return builder
    return register


@row("012 sheared direction to .nii.gz")
def _(tmp, env):
    image = ct_volume(tmp, direction=(1, 0.3, 0, 0, 1, 0, 0, 0, 1))
    prompt, out = prompt_file(tmp), tmp / "out.nii.gz"
    return Case(["segment", str(image), "--prompts", str(prompt), "--output", str(out), "--model", "micro"],
                message=r"out\.nii\.gz: NIfTI cannot hold .*sheared.*write \.nrrd or \.seg\.nrrd",
                inputs=[image, prompt], outputs=[out])


for _suffix in (".nii.gz", ".nrrd", ".mha", ".nii"):
    @row(f"089-092 disk full, {_suffix}")
    def _(tmp, env, suffix=_suffix):
        case = segment_case(tmp, output=f"out{suffix}",
                            message=rf"could not write .*out{re.escape(suffix)}: .*(does not read back as written|File too large)")
        case.file_size_limit = 64
        return case


@row("098 SIGTERM while writing")
def _(tmp, env):
    case = segment_case(tmp, message="interrupted; nothing was written")
    case.terminate_on_write = True
    return case


@row("128 write_result to the input's path")
def _(tmp, env):
    return _write_over_input(tmp, lambda image: image)


@row("128 write_result to the input through a symlink")
def _(tmp, env):
    def link(image):
        (tmp / "link.nrrd").symlink_to(image)
        return tmp / "link.nrrd"
    return _write_over_input(tmp, link)


@row("128 write_result to the input through a hard link")
def _(tmp, env):
    def link(image):
        os.link(image, tmp / "hard.nrrd")
        return tmp / "hard.nrrd"
    return _write_over_input(tmp, link)


@row("128 write_result to the input by a relative path")
def _(tmp, env):
    return _write_over_input(tmp, lambda image: os.path.relpath(image))


@row("146 download: a captive portal's page, no published hash")
def _(tmp, env):
    cache = download_zoo(tmp, env, "portal/model.pt")
    return Case(["download", "m"], message=r"portal/model.pt sent \(\d+ bytes\) is a web page .*not pinned",
                outputs=[cache / "model.pt", cache / "pins.json", cache / "model.pt.part"])


@row("148 download: body cut off without a Content-Length, no published hash")
def _(tmp, env):
    cache = download_zoo(tmp, env, "cut/model.pt")
    return Case(["download", "m"], message=r"cut/model.pt sent .* does not load as a checkpoint.*not pinned",
                outputs=[cache / "model.pt", cache / "pins.json", cache / "model.pt.part"])


@row("149 download: a resume answered with other bytes, no published hash")
def _(tmp, env):
    cache = download_zoo(tmp, env, "from-zero/model.pt")
    (cache / "model.pt.part").write_bytes(CHECKPOINT[:1000])
    return Case(["download", "m"], message=r"answered the resume from byte 1000 with other bytes .*partial file was deleted",
                outputs=[cache / "model.pt", cache / "pins.json", cache / "model.pt.part"])


@row("150 download: a poisoned pin, then remove, then the real file")
def _(tmp, env):
    cache = download_zoo(tmp, env, "model.pt")
    (cache / "pins.json").write_text('{"model.pt": "%s"}' % ("0" * 64))  # pinned by a poisoned download

    def recovered():
        import hashlib
        import json

        return json.loads((cache / "pins.json").read_text()) == {"model.pt": hashlib.sha256(CHECKPOINT).hexdigest()}
    return Case(["download", "m"], before=[["remove", "m"]], status=0, check=recovered)


@row("154 download: the disk fills up")
def _(tmp, env):
    cache = download_zoo(tmp, env, "model.pt")
    return Case(["download", "m"], message=r"no space left to download model.pt into .*cache.*partial file was removed",
                outputs=[cache / "model.pt", cache / "model.pt.part", cache / "pins.json"], file_size_limit=100_000)


@row("143b download: a trickle past the whole transfer's time limit")
def _(tmp, env):
    env.server.files["big.pt"] = bytes(40 << 20)
    cache = download_zoo(tmp, env, "trickle/big.pt")
    return Case(["download", "m", "--max-time", "1"], message=r"trickle/big.pt took longer than 1 s",
                outputs=[cache / "big.pt", cache / "pins.json"])


@row("105 a malicious pickle: the message says why")
def _(tmp, env):
    import torch

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {tmp / 'ran'}",)
    bad = tmp / "bad.pt"
    torch.save({"model": Exploit()}, bad)  # a checkpoint that would run a command when unpickled
    case = segment_case(tmp, message=r"refused to load .*bad\.pt: it needs arbitrary Python code \((posix|os)\.system\)")
    case.argv[case.argv.index("--model"):case.argv.index("--model") + 2] = ["--checkpoint", str(bad), "--config",
                                                                              "micro_256.yaml"]
    case.check = lambda: not (tmp / "ran").exists()
    case.inputs.append(bad)
    return case


@row("110 --config without --checkpoint or --model")
def _(tmp, env):
    case = segment_case(tmp, message=r"a config \(micro_256.yaml\) was given without the checkpoint.*--checkpoint PATH")
    case.argv[case.argv.index("--model"):case.argv.index("--model") + 2] = ["--config", "micro_256.yaml"]
    return case


@row("111 the shipped micro.pt replaced by other weights")
def _(tmp, env):
    _shipped_copy(tmp, env, replace=True)
    return segment_case(tmp, message=r"micro\.pt is not model micro's checkpoint .*restore .*micro\.pt from the project")


@row("112 verify micro on a replaced file")
def _(tmp, env):
    _shipped_copy(tmp, env, replace=True)
    return Case(["verify", "micro"], message=r"micro is mismatch; restore .*micro\.pt from the project's files")


@row("114 the shipped micro.pt deleted, demo")
def _(tmp, env):
    _shipped_copy(tmp, env, delete=True)
    out = tmp / "demo"
    return Case(["demo", "--output", str(out), "--device", "cpu"],
                message=r"micro.* ships with the project but .*micro\.pt is missing.*restore", outputs=[out])


# rows that are one `segment` option each: (options, the message)
OPTION_ROWS = {
    "117 --range -3:5": (["--range", "-3:5"], r"range -3:5 is not within slices 0:7"),
    "121 --window inf,100": (["--window", "inf,100"], r"window centre and width must be finite"),
    "121 --window 1e309,5": (["--window", "1e309,5"], r"window centre and width must be finite"),
    "123 --stop-after 0": (["--stop-after", "0"], r"--stop-after: must be a whole number .* at least 1"),
    "123 --stop-after -2": (["--stop-after=-2"], r"--stop-after: must be a whole number .* at least 1"),
    "125 --precision fp16 on the CPU": (["--precision", "fp16"], r"fp16 does not run on the CPU.*--precision bf16 or fp32"),
}
for _name, (_options, _message) in OPTION_ROWS.items():
    row(_name)(lambda tmp, env, options=_options, message=_message: segment_case(tmp, options=options, message=message))


@row("132 previous= from another volume")
def _(tmp, env):
    from SegmentWithSAM2Lib import load_model, segment

    one, other = ct_volume(tmp), ct_volume(tmp, "other.nrrd", shape=(6, 40, 40))
    model = load_model("micro", device="cpu")
    prompts = {"space": "IJK", "objects": [{"points": [{"position": [20, 20, 3]}]}]}
    earlier = segment(model, other, prompts)
    return Case(call=lambda: segment(model, one, prompts, previous=earlier),
                message=r"the previous result is of another volume \(shape \(6, 40, 40\)", inputs=[one, other])


@row("133 window=None")
def _(tmp, env):
    from SegmentWithSAM2Lib import load_model, segment

    image = ct_volume(tmp)
    model = load_model("micro", device="cpu")
    prompts = {"space": "IJK", "objects": [{"points": [{"position": [22, 24, 4]}]}]}
    return Case(call=lambda: segment(model, image, prompts, window=None), message=r"window must be text .* got None",
                inputs=[image])


@row("136 evaluate --report into a missing folder")
def _(tmp, env):
    report = tmp / "missing" / "report.json"
    return Case(["evaluate", "--synthetic", "1", "--report", str(report), *MODEL],
                message=r"output folder .*missing does not exist", outputs=[report])


@row("137 evaluate --labels 999 (absent)")
def _(tmp, env):
    from SegmentWithSAM2Lib.io.labelmaps import write_labelmap
    from SegmentWithSAM2Lib.io.volume_files import read_volume

    image = ct_volume(tmp)
    volume = read_volume(image)
    labels = tmp / "labels.nrrd"
    write_labelmap((volume.array > 0).astype("uint8"), volume, labels)
    listing = tmp / "cases.txt"
    listing.write_text("ct.nrrd labels.nrrd\n")
    return Case(["evaluate", "--data", str(listing), "--labels", "999", *MODEL],
                message=r"no labelled structure to evaluate in .*cases.txt with --labels 999", inputs=[image, labels])


POINT = {"position": [22, 24, 4]}


@row("043 a typo key 'postive'")
def _(tmp, env):
    return segment_case(tmp, objects=[{"name": "organ", "points": [{**POINT, "postive": False}]}],
                        message=r"'organ' point #1: unknown key 'postive'; did you mean 'positive'\?")


@row("044 'positive': 'false' (a string)")
def _(tmp, env):
    return segment_case(tmp, objects=[{"name": "organ", "points": [{**POINT, "positive": "false"}]}],
                        message=r"'organ' point #1: 'positive' must be true or false \(a JSON boolean\), got 'false'")


@row("064 colour 'red'")
def _(tmp, env):
    return segment_case(tmp, objects=[{"name": "organ", "color": "red", "points": [POINT]}],
                        message=r"object 'organ': 'color' must be three numbers from 0 to 1 .*got 'red'")


@row("065 colour [1, 0] to .seg.nrrd")
def _(tmp, env):
    return segment_case(tmp, output="out.seg.nrrd", objects=[{"name": "organ", "color": [1, 0], "points": [POINT]}],
                        message=r"object 'organ': 'color' must be three numbers from 0 to 1 .*got \[1, 0\]")


@row("066 colour [300, -5, 2]")
def _(tmp, env):
    return segment_case(tmp, objects=[{"name": "organ", "color": [300, -5, 2], "points": [POINT]}],
                        message=r"'color' must be three numbers from 0 to 1 .*got \[300, -5, 2\]")


@row("069 a non-ASCII name to .seg.nrrd")
def _(tmp, env):
    from SegmentWithSAM2Lib.io.labelmaps import segment_names

    case = segment_case(tmp, output="out.seg.nrrd", objects=[{"name": "Tumör 肿瘤", "points": [POINT]}])
    out = case.outputs.pop()
    case.status, case.check = 0, lambda: segment_names(out) == ["Tumör 肿瘤"]
    return case


@row("070 a name with a newline to .seg.nrrd")
def _(tmp, env):
    return segment_case(tmp, output="out.seg.nrrd", objects=[{"name": "liver\nsegment", "points": [POINT]}],
                        message=r"the name 'liver\\nsegment' holds control characters")


@row("073 a mask prompt with label 0")
def _(tmp, env):
    return _mask_case(tmp, {"file": "labels.nrrd", "label": 0, "slice": 4}, r"labels.nrrd: 'label' must be .*0 is the background")


@row("075 a mask prompt on slice 3.7")
def _(tmp, env):
    return _mask_case(tmp, {"file": "labels.nrrd", "label": 1, "slice": 3.7}, r"mask #1: 'slice' must be a whole slice index, got 3.7")


def _mask_case(tmp, mask, message):
    from SegmentWithSAM2Lib.io.labelmaps import write_labelmap
    from SegmentWithSAM2Lib.io.volume_files import read_volume

    volume = read_volume(ct_volume(tmp))
    write_labelmap((volume.array > 0).astype("uint8"), volume, tmp / "labels.nrrd")
    case = segment_case(tmp, objects=[{"name": "organ", "masks": [mask]}], message=message)
    case.inputs.append(tmp / "labels.nrrd")
    return case


@row("027 a truncated .nii.gz (half)")
def _(tmp, env):
    return _truncated(tmp, "ct.nii.gz", r"ct\.nii\.gz is cut short or damaged .*it was not read")


@row("028 a truncated .nii (half)")
def _(tmp, env):
    return _truncated(tmp, "ct.nii", r"ct\.nii is cut short: its header promises 37216 bytes, the file holds 18608")


def _truncated(tmp, name, message):
    image = ct_volume(tmp, name)
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    case = segment_case(tmp, message=message)
    case.argv[1], case.inputs[0] = str(image), image
    return case


@row("033 a DICOM series with 2 slices missing")
def _(tmp, env):
    import SimpleITK as sitk

    from dicom_series import write_ct_series

    image = sitk.ReadImage(str(ct_volume(tmp, shape=(10, 48, 48))))
    folder = write_ct_series(image, tmp / "series")
    files = sorted(folder.iterdir())
    for gone in files[4:6]:
        gone.unlink()
    case = segment_case(tmp, message=r"series is not evenly spaced: the slices at .* are 7.50 mm apart, the others "
                                     r"2.50 mm \(about 2 slice\(s\) missing\?\)")
    case.argv[1], case.inputs = str(folder), files[:4] + files[6:]
    return case


@row("006 a 1x64x64 volume sliced axially: an empty result")
def _(tmp, env):
    import SimpleITK as sitk

    image = tmp / "thin.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((64, 64, 1), 100, np.int16) * np.arange(64)[None, :, None]),
                    str(image))
    prompt = prompt_file(tmp, [{"name": "organ", "points": [{"position": [0, 30, 30]}]}])
    out = tmp / "out.nii.gz"
    return Case(["segment", str(image), "--prompts", str(prompt), "--output", str(out), *MODEL],
                status=0, message=r"warning: the result is empty: no object was segmented", inputs=[image, prompt])


@row("077 20 objects to .seg.nrrd, some empty")
def _(tmp, env):
    objects = [{"name": "organ", "points": [POINT]}] + [
        {"name": f"air {n}", "label": n, "points": [{"position": [2 + n, 2, 1]}]} for n in range(2, 21)]
    case = segment_case(tmp, output="out.seg.nrrd", objects=objects,
                        message=r"warning: object 'air \d+' \(label \d+\) is empty on every slice")
    case.status, case.outputs = 0, []
    return case


@row("081 output on a read-only file system")
def _(tmp, env):
    (tmp / "readonly").mkdir()
    case = segment_case(tmp, output="readonly/out.nii.gz",
                        message=r"cannot write .*readonly/out\.nii\.gz: its folder is read-only; choose another output")
    case.read_only = tmp / "readonly"
    return case


def _shipped_copy(tmp, env, replace=False, delete=False):
    """A copy of the project's catalogue whose micro.pt is replaced or deleted (the project's own is untouched)."""
    import shutil

    from SegmentWithSAM2Lib.io.model_zoo import model_zoo_dir

    zoo = tmp / "zoo"
    shutil.copytree(model_zoo_dir(), zoo)
    if replace:
        import torch

        state = torch.load(zoo / "micro" / "micro.pt", weights_only=True)
        state["model"]["no_mem_embed"] = state["model"]["no_mem_embed"] + 1
        torch.save(state, zoo / "micro" / "micro.pt")
    if delete:
        (zoo / "micro" / "micro.pt").unlink()
    env.monkeypatch.setenv("SEGMENTWITHSAM2_MODEL_ZOO", str(zoo))


def _write_over_input(tmp, target_of):
    from SegmentWithSAM2Lib import load_model, segment, write_result

    image = ct_volume(tmp)
    model = load_model("micro", device="cpu")
    prompts = {"space": "IJK", "objects": [{"points": [{"position": [22, 24, 4]}]}]}

    def call():
        write_result(segment(model, image, prompts), target_of(image), overwrite=True)
    return Case(call=call, message=r"is the input .*ct\.nrrd.*inputs are never overwritten", inputs=[image])


def _run(case, monkeypatch):
    if case.call is not None:
        from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error

        with pytest.raises(SegmentWithSAM2Error) as error:
            case.call()
        return 1, str(error.value)
    if getattr(case, "terminate_on_write", False):
        import SimpleITK

        write = SimpleITK.WriteImage

        def write_then_terminate(*args, **kwargs):
            write(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGTERM)
        monkeypatch.setattr(SimpleITK, "WriteImage", write_then_terminate)
    return run_cli(case.argv, case.file_size_limit, case.read_only)


class Env:
    def __init__(self, monkeypatch, server):
        self.monkeypatch, self.server = monkeypatch, server


@pytest.mark.parametrize("name", sorted(ROWS))
def test_trial_row(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with CheckpointServer({"model.pt": CHECKPOINT}) as server:
        case = ROWS[name](tmp_path, Env(monkeypatch, server))
        before = {path: sha256(path) for path in case.inputs}
        for argv in case.before:
            assert run_cli(argv)[0] == 0
        status, err = _run(case, monkeypatch)
    assert status == case.status, err
    if case.status:
        lines = [line for line in err.splitlines() if line.startswith("error:")] or [err]
        assert len(lines) == 1 and re.search(case.message, lines[0]), err
    elif case.message:  # a case that runs, and must say what went wrong in a warning
        assert re.search(case.message, err), err
    assert case.check is None or case.check()
    assert "Traceback" not in err
    for output in case.outputs:
        assert not output.exists(), f"{output} was written"
    assert not [p.name for p in tmp_path.rglob(".*")], "a hidden (temporary) file was left behind"
    assert {path: sha256(path) for path in case.inputs} == before, "an input changed"
