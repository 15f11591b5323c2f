"""The micro weights shipped in model_zoo/micro/: small, verified against the registry, labelled
as a demonstration model, and the phantom demo's model."""

import json

from SegmentWithSAM2Lib.io.model_zoo import checkpoint_path, model_spec, model_zoo_dir
from SegmentWithSAM2Lib.io.hashing import sha256_of as file_sha256
from SegmentWithSAM2Lib.io.model_cache import cache_entry as entry


def test_the_shipped_file_matches_its_registry_entry():
    spec = model_spec("micro")
    path = checkpoint_path(spec)
    assert path.parent == model_zoo_dir() / "micro" and path.is_file()
    assert path.stat().st_size == spec.size_bytes < 25 * 2 ** 20
    assert file_sha256(path) == spec.sha256
    assert entry("micro", check=True).state == "verified"
    assert "not for clinical use" in spec.name.lower()


def test_the_manifest_names_the_command_seed_data_and_log():
    folder = model_zoo_dir() / "micro"
    manifest = (folder / "README.md").read_text(encoding="utf-8")
    spec = model_spec("micro")
    for needed in ("Not for clinical use", "--seed 0", "segment-with-sam2 train", "mricron-data", "AAL",
                   "BSD-3-clause", spec.sha256, "train.log"):
        assert needed in manifest, needed
    log = (folder / "train.log").read_text(encoding="utf-8").splitlines()
    assert log and all("validation Dice" in line for line in log)


def test_the_phantom_demo_runs_micro_and_reports_its_dice(tmp_path, capsys):
    from SegmentWithSAM2Lib.cli import main

    assert main(["demo", "--sample", "phantom", "--output", str(tmp_path), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "model micro" in captured.err and "NOT FOR CLINICAL USE" in captured.err
    dice = float(captured.out.split("Dice against the sample's known label: ")[1].split(";")[0])
    assert dice >= 0.75, dice  # 0.805 measured with the shipped weights (2026-11-30); random weights give 0.07
    assert (tmp_path / "sample_ct_seg.nii.gz").is_file() and json.loads((tmp_path / "prompts.json").read_text())
