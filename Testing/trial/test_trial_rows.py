"""The BAD rows of the new-user trial (../shared/reviews/new-user-trial.md), one case per row,
named after it: each must exit 1 (or raise, for the API) with one line naming the offending
input, leave no output and no hidden file, and leave every input byte for byte as it was."""

from __future__ import annotations

import os
import re
import signal

import pytest

from cases import CHECKPOINT, Case, ct_volume, download_zoo, prompt_file, run_cli, segment_case, sha256
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
    return run_cli(case.argv, case.file_size_limit)


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
    assert case.check is None or case.check()
    assert "Traceback" not in err
    for output in case.outputs:
        assert not output.exists(), f"{output} was written"
    assert not [p.name for p in tmp_path.rglob(".*")], "a hidden (temporary) file was left behind"
    assert {path: sha256(path) for path in case.inputs} == before, "an input changed"
