"""Reports, manifests and checkpoints written complete or absent, like the labelmaps."""

import errno

import pytest
import torch

from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error
from SegmentWithSAM2Lib.io.atomic import save_torch_atomic, write_atomic, write_text_atomic


def test_text_and_checkpoints_replace_their_target_whole(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    write_text_atomic(target, '{"dice": 0.9, "case": "Tumör"}')
    assert target.read_text(encoding="utf-8") == '{"dice": 0.9, "case": "Tumör"}'
    save_torch_atomic({"model": {"w": torch.ones(3)}}, tmp_path / "model.pt")
    assert torch.equal(torch.load(tmp_path / "model.pt", weights_only=True)["model"]["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "report.json"]


def test_a_short_write_leaves_the_target_and_no_hidden_file(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(SegmentWithSAM2Error, match=r"could not write .*report\.json: 3 of 10 bytes reached the disk"):
        write_atomic(target, lambda temporary: temporary.write_bytes(b"abc"), expected_size=10)

    def full(temporary):
        temporary.write_bytes(b"ab")
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(SegmentWithSAM2Error, match=r"could not write .*report\.json: No space left on device"):
        write_atomic(target, full)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
