"""The BAD rows of the new-user trial (../shared/reviews/new-user-trial.md), one case per row,
named after it: each must exit 1 (or raise, for the API) with one line naming the offending
input, leave no output and no hidden file, and leave every input byte for byte as it was."""

from __future__ import annotations

import os
import re
import signal

import pytest

from cases import Case, ct_volume, prompt_file, run_cli, segment_case, sha256

ROWS = {}


def row(name):
    def register(builder):
        ROWS[name] = builder
        return builder
    return register


@row("012 sheared direction to .nii.gz")
def _(tmp):
    image = ct_volume(tmp, direction=(1, 0.3, 0, 0, 1, 0, 0, 0, 1))
    prompt, out = prompt_file(tmp), tmp / "out.nii.gz"
    return Case(["segment", str(image), "--prompts", str(prompt), "--output", str(out), "--model", "micro"],
                message=r"out\.nii\.gz: NIfTI cannot hold .*sheared.*write \.nrrd or \.seg\.nrrd",
                inputs=[image, prompt], outputs=[out])


for _suffix in (".nii.gz", ".nrrd", ".mha", ".nii"):
    @row(f"089-092 disk full, {_suffix}")
    def _(tmp, suffix=_suffix):
        case = segment_case(tmp, output=f"out{suffix}",
                            message=rf"could not write .*out{re.escape(suffix)}: .*(does not read back as written|File too large)")
        case.file_size_limit = 64
        return case


@row("098 SIGTERM while writing")
def _(tmp):
    case = segment_case(tmp, message="interrupted; nothing was written")
    case.terminate_on_write = True
    return case


@row("128 write_result to the input's path")
def _(tmp):
    return _write_over_input(tmp, lambda image: image)


@row("128 write_result to the input through a symlink")
def _(tmp):
    def link(image):
        (tmp / "link.nrrd").symlink_to(image)
        return tmp / "link.nrrd"
    return _write_over_input(tmp, link)


@row("128 write_result to the input through a hard link")
def _(tmp):
    def link(image):
        os.link(image, tmp / "hard.nrrd")
        return tmp / "hard.nrrd"
    return _write_over_input(tmp, link)


@row("128 write_result to the input by a relative path")
def _(tmp):
    return _write_over_input(tmp, lambda image: os.path.relpath(image))


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


@pytest.mark.parametrize("name", sorted(ROWS))
def test_trial_row(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    case = ROWS[name](tmp_path)
    before = {path: sha256(path) for path in case.inputs}
    status, err = _run(case, monkeypatch)
    lines = [line for line in err.splitlines() if line.startswith("error:")] or [err]
    assert status == 1, err
    assert len(lines) == 1 and re.search(case.message, lines[0]), err
    assert "Traceback" not in err
    for output in case.outputs:
        assert not output.exists(), f"{output} was written"
    assert not [p.name for p in tmp_path.rglob(".*")], "a hidden (temporary) file was left behind"
    assert {path: sha256(path) for path in case.inputs} == before, "an input changed"
