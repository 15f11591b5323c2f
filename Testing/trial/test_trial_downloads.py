"""Trial rows about downloads: what a careless network sends is never pinned or kept."""

from __future__ import annotations

import pytest

from cases import CHECKPOINT, Case, download_zoo
from harness import check_row, registry

ROWS = {}
row = registry(ROWS)


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


@pytest.mark.parametrize("name", sorted(ROWS))
def test_trial_row(name, tmp_path, monkeypatch):
    check_row(ROWS[name], tmp_path, monkeypatch)
