"""The trial's harness: rows register a case builder by name, and ``check_row`` runs one: it must
exit 1 (or raise, for the API) with one line naming the offending input (or, for a case that must
now succeed, status 0 and its check), leave no output and no hidden file, and leave every input
byte for byte as it was."""

from __future__ import annotations

import os
import re
import signal

import pytest

from cases import CHECKPOINT, run_cli, sha256
from http_server import CheckpointServer


def registry(rows: dict):
    """A decorator ``@row(name)`` that puts a case builder ``(tmp, env) -> Case`` into ``rows``."""
    def row(name):
        def register(builder):
            rows[name] = builder
            return builder
        return register
    return row


class Env:
    def __init__(self, monkeypatch, server):
        self.monkeypatch, self.server = monkeypatch, server


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


def check_row(builder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with CheckpointServer({"model.pt": CHECKPOINT}) as server:
        case = builder(tmp_path, Env(monkeypatch, server))
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
