"""Errors carry what would fix them in neutral terms, and each front end phrases the fix in its
own words: the command line as flags, the Slicer module as widgets and buttons."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from SegmentWithSAM2Lib.cli import CLI_REMEDIES, main
from SegmentWithSAM2Lib.errors import NEUTRAL_REMEDIES, Remedy, SegmentWithSAM2Error
from SegmentWithSAM2Lib.mrml.jobs import SLICER_REMEDIES, describe

LIBRARY = Path(__file__).resolve().parents[2] / "SegmentWithSAM2" / "SegmentWithSAM2Lib"
FRONT_END_WORDS = re.compile(r"(?<![\w-])--[a-z]|segment-with-sam2 ")


def raised_texts(path: Path):
    """Every string constant inside a ``raise`` statement of ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Raise):
            for part in ast.walk(node):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    yield node.lineno, part.value


def test_library_errors_name_no_flag_and_no_command():
    found = [(str(p.relative_to(LIBRARY)), line, text) for p in LIBRARY.rglob("*.py")
             if "cli" not in p.relative_to(LIBRARY).parts
             for line, text in raised_texts(p) if FRONT_END_WORDS.search(text)]
    assert not found, f"library errors phrased for one front end: {found}"


def test_the_scan_sees_raised_messages():
    texts = [text for p in LIBRARY.rglob("*.py") for _, text in raised_texts(p)]
    assert len(texts) > 100 and any("is not downloaded" in t for t in texts)
    assert FRONT_END_WORDS.search("give --device cpu") and not FRONT_END_WORDS.search("a 2--3 mm gap")


@pytest.mark.parametrize("phrasings", [CLI_REMEDIES, SLICER_REMEDIES], ids=["cli", "slicer"])
def test_every_remedy_has_a_phrasing_in_each_front_end(phrasings):
    assert set(phrasings) == set(NEUTRAL_REMEDIES)


def test_slicer_phrasings_name_no_shell_command():
    assert not [t for t in SLICER_REMEDIES.values() if FRONT_END_WORDS.search(t) or "git " in t]


def test_one_error_three_wordings():
    error = SegmentWithSAM2Error("model 'x' is not downloaded", Remedy("download", "x"))
    assert str(error) == "model 'x' is not downloaded; download model x first"
    assert error.phrased(CLI_REMEDIES).endswith("run `segment-with-sam2 download x` (or add --download)")
    assert describe(error) == "model 'x' is not downloaded; press Download to fetch x"


def test_the_cli_phrases_a_missing_model_as_a_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGMENTWITHSAM2_CACHE", str(tmp_path / "cache"))
    (tmp_path / "p.json").write_text('{"space": "IJK", "objects": [{"points": [{"position": [2, 2, 1]}]}]}')
    import numpy as np
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(np.arange(4 * 8 * 8, dtype=np.int16).reshape(4, 8, 8)),
                    str(tmp_path / "v.nrrd"))
    assert main(["segment", str(tmp_path / "v.nrrd"), "--prompts", str(tmp_path / "p.json"),
                 "--output", str(tmp_path / "out.nii.gz"), "--model", "sam2.1-hiera-tiny"]) == 1
    err = capsys.readouterr().err
    assert "model 'sam2.1-hiera-tiny' is not downloaded" in err
    assert "run `segment-with-sam2 download sam2.1-hiera-tiny` (or add --download)" in err
    assert not (tmp_path / "out.nii.gz").exists()
