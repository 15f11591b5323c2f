"""Trial rows about what is written: the format, the disk, signals, and never over an input."""

from __future__ import annotations

import os
import re

import pytest

from cases import Case, ct_volume, prompt_file, segment_case
from harness import check_row, registry

ROWS = {}
row = registry(ROWS)


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


@row("081 output on a read-only file system")
def _(tmp, env):
    (tmp / "readonly").mkdir()
    case = segment_case(tmp, output="readonly/out.nii.gz",
                        message=r"cannot write .*readonly/out\.nii\.gz: its folder is read-only; choose another output")
    case.read_only = tmp / "readonly"
    return case


def _write_over_input(tmp, target_of):
    from SegmentWithSAM2Lib import load_model, segment, write_result

    image = ct_volume(tmp)
    model = load_model("micro", device="cpu")
    prompts = {"space": "IJK", "objects": [{"points": [{"position": [22, 24, 4]}]}]}

    def call():
        write_result(segment(model, image, prompts), target_of(image), overwrite=True)
    return Case(call=call, message=r"is the input .*ct\.nrrd.*inputs are never overwritten", inputs=[image])


@pytest.mark.parametrize("name", sorted(ROWS))
def test_trial_row(name, tmp_path, monkeypatch):
    check_row(ROWS[name], tmp_path, monkeypatch)
