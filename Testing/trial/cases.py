"""Inputs for the trial's cases: a small CT-like volume with one bright object, its prompt file,
and ways to run the command line (in this process, or in a child with a file-size limit that
makes every write past it fail, as a full disk does)."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from http_server import generated_checkpoint

MODEL = ["--model", "micro", "--device", "cpu"]


@dataclass
class Case:
    """A bad input: how to run it, what the user must be told, what must stay as it was."""

    argv: list | None = None  # the command line's arguments
    call: object = None  # or a Python call (API cases)
    message: str = ""  # a regex the one-line error must match (it names the offending input)
    inputs: list = field(default_factory=list)  # files whose bytes must not change
    outputs: list = field(default_factory=list)  # files that must not exist afterwards
    file_size_limit: int | None = None  # bytes: run in a child process that cannot write more
    status: int = 1  # the exit status expected (0 for a case that must now recover)
    before: list = field(default_factory=list)  # command lines run first (they must succeed)
    check: object = None  # a callable asserting what must hold afterwards
    read_only: Path | None = None  # a folder mounted read-only (in a mount namespace of the child's own)


def ct_volume(folder: Path, name="ct.nrrd", shape=(8, 48, 48), direction=None) -> Path:
    array = np.full(shape, -50, np.int16)
    array[2:6, 16:32, 14:30] = 120
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.8, 0.8, 2.5))
    if direction is not None:
        image.SetDirection(direction)
    path = folder / name
    sitk.WriteImage(image, str(path))
    return path


def prompt_file(folder: Path, objects=None, name="prompts.json", **extra) -> Path:
    objects = objects if objects is not None else [{"name": "organ", "points": [{"position": [22, 24, 4]}]}]
    path = folder / name
    path.write_text(json.dumps({"space": "IJK", "objects": objects, **extra}, ensure_ascii=False), encoding="utf-8")
    return path


def segment_case(tmp: Path, output="out.nii.gz", message="", options=(), **prompts) -> Case:
    image, prompt = ct_volume(tmp), prompt_file(tmp, **prompts)
    out = tmp / output
    return Case(["segment", str(image), "--prompts", str(prompt), "--output", str(out), *MODEL, *options],
                message=message, inputs=[image, prompt], outputs=[out])


CHECKPOINT = generated_checkpoint()


def download_zoo(tmp: Path, env, path: str, sha256_: str | None = None, size=None) -> Path:
    """A catalogue of one model "m" served from ``path`` on the local server; returns the cache folder."""
    zoo, cache = tmp / "zoo", tmp / "cache"
    zoo.mkdir(exist_ok=True)
    cache.mkdir(exist_ok=True)
    entry = {"id": "m", "family": "sam2.1", "name": "m", "config": "medsam2_512.yaml", "image_size": 512,
             "urls": [f"{env.server.url}/{path}"], "sha256": sha256_, "size_bytes": size}
    (zoo / "models.json").write_text(json.dumps({"format_version": 1, "models": [entry]}))
    env.monkeypatch.setenv("SEGMENTWITHSAM2_MODEL_ZOO", str(zoo))
    env.monkeypatch.setenv("SEGMENTWITHSAM2_CACHE", str(cache))
    return cache


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_cli(argv, file_size_limit=None, read_only=None) -> tuple[int, str]:
    """(exit status, stderr) of ``segment-with-sam2 ARGV``."""
    if read_only is not None:
        return _run_on_read_only_folder(argv, read_only)
    if file_size_limit is None:
        import contextlib
        import io

        from SegmentWithSAM2Lib.cli import main

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                status = main(argv)
            except SystemExit as exit_:
                status = exit_.code
        return status, err.getvalue()
    child = subprocess.run([sys.executable, "-m", "SegmentWithSAM2Lib.cli", *argv], capture_output=True,
                           encoding="utf-8", errors="replace",
                           preexec_fn=lambda: _limit_file_size(file_size_limit), timeout=600,
                           env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8"))
    return child.returncode, child.stderr


def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _run_on_read_only_folder(argv, folder: Path) -> tuple[int, str]:
    """The command in a child whose ``folder`` is a read-only file system: ``unshare`` gives it a
    mount namespace of its own (as an unprivileged user too), so nothing outside it sees the mount."""
    import shlex

    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "SegmentWithSAM2Lib.cli", *argv])
    script = f"mount -t tmpfs -o ro,size=1m tmpfs {shlex.quote(str(folder))} && exec {command}"
    child = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, encoding="utf-8",
                           errors="replace", timeout=600, env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    return child.returncode, child.stderr
