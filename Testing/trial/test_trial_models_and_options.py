"""Trial rows about models and options: checkpoints, the shipped micro, windows, ranges, evaluate."""

from __future__ import annotations

import os

import pytest

from cases import MODEL, Case, ct_volume, segment_case
from harness import check_row, registry

ROWS = {}
row = registry(ROWS)


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
    return Case(["demo", "--sample", "phantom", "--output", str(out), "--device", "cpu"],
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


@pytest.mark.parametrize("name", sorted(ROWS))
def test_trial_row(name, tmp_path, monkeypatch):
    check_row(ROWS[name], tmp_path, monkeypatch)
