"""The sam2 this project runs is Meta's: every Python file of the installed package is byte for
byte the file of facebookresearch/sam2 at commit 2b90b9f5 (the PyPI upload named sam2 is a third
party's; its files are Meta's, and this test keeps it so).  The manifest was computed from Meta's
repository and is committed as data: SegmentWithSAM2/Resources/sam2-2b90b9f5.sha256."""

import hashlib
from pathlib import Path

import sam2

MANIFEST = Path(__file__).resolve().parents[2] / "SegmentWithSAM2" / "Resources" / "sam2-2b90b9f5.sha256"


def manifest() -> dict:
    lines = [line.split() for line in MANIFEST.read_text().splitlines() if line and not line.startswith("#")]
    return {path: digest for digest, path in lines}


def test_the_installed_sam2_is_metas_at_the_pinned_commit():
    expected = manifest()
    root = Path(sam2.__file__).resolve().parent.parent
    installed = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in (root / "sam2").rglob("*.py")}
    assert len(expected) == 25 and "sam2/sam2_video_predictor.py" in expected
    assert installed == expected
