"""What the module installs into Slicer: one requirements file with the library's own pins, and a
sam2 whose Python files are checked against the manifest of Meta's repository."""

import shutil
import tomllib
from pathlib import Path

import sam2

from SegmentWithSAM2Lib.dependencies import TORCH_REQUIREMENT, read_requirements, sam2_mismatches

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = ROOT / "SegmentWithSAM2" / "Resources"


def test_the_slicer_requirements_carry_the_librarys_pins():
    pinned = {r.split(">")[0].split("<")[0].split("=")[0]: r
              for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    slicer_side = read_requirements(RESOURCES / "requirements.txt")
    assert slicer_side and all(pinned.get(r.split(">")[0].split("<")[0]) == r for r in slicer_side)
    assert not {"torch", "sam2", "monai"} & {r.split(">")[0] for r in slicer_side}  # torch, sam2 apart; monai unused
    assert pinned["torch"].startswith(f"torch{TORCH_REQUIREMENT}")


def test_a_sam2_with_a_changed_file_is_found(tmp_path):
    manifest = RESOURCES / "sam2-2b90b9f5.sha256"
    lines = [line for line in manifest.read_text().splitlines() if not line.startswith("#")]
    assert len(lines) == 25 and any(line.endswith("  sam2/sam2_video_predictor.py") for line in lines)
    assert sam2_mismatches(manifest) == []  # the installed one (PyPI's upload) is Meta's, file for file
    copy = tmp_path / "site"
    shutil.copytree(Path(sam2.__file__).resolve().parent, copy / "sam2",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.yaml"))
    target = copy / "sam2" / "sam2_video_predictor.py"
    target.write_text(target.read_text() + "\nimport os  # a changed upload\n")
    (copy / "sam2" / "extra.py").write_text("")
    assert sam2_mismatches(manifest, copy) == ["sam2/extra.py", "sam2/sam2_video_predictor.py"]
