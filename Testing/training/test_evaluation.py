"""Evaluation metrics (MONAI) on known shapes, the point/box protocols, and the command's table."""

import json

import numpy as np
import pytest

from SegmentWithSAM2Lib.cli import main
from SegmentWithSAM2Lib.training.evaluation import corrective_click, prompt_for, scores


def test_metrics_on_known_shapes():
    truth = np.zeros((10, 20, 20), bool)
    truth[3:7, 5:15, 5:15] = True
    shifted = np.zeros_like(truth)
    shifted[3:7, 6:16, 5:15] = True  # one voxel along j (1 mm)
    assert scores(truth, truth, (2.0, 1.0, 1.0)) == {"dice": 1.0, "hd95": 0.0, "nsd": 1.0}
    result = scores(shifted, truth, (2.0, 1.0, 1.0))
    assert result["dice"] == pytest.approx(0.9) and result["hd95"] == pytest.approx(1.0) and result["nsd"] == 1.0
    empty = scores(np.zeros_like(truth), truth, (2.0, 1.0, 1.0))
    assert empty["dice"] == 0.0 and empty["hd95"] == float("inf") and empty["nsd"] == 0.0


def test_protocol_prompts_sit_on_the_object():
    labels = np.zeros((9, 30, 30), np.uint8)
    labels[2:7, 10:20, 8:22] = 3
    box = prompt_for(labels, 3, "box")["objects"][0]["boxes"][0]
    assert box == {"corner1": [8, 10, 4], "corner2": [21, 19, 4]}
    point = prompt_for(labels, 3, "point")["objects"][0]["points"][0]["position"]
    assert labels[point[2], point[1], point[0]] == 3 and point[2] == 4


def test_evaluate_command_writes_a_table_for_the_engine_and_the_baseline(tmp_path, capsys):
    report = tmp_path / "eval.json"
    assert main(["evaluate", "--synthetic", "1", "--config", "micro_256.yaml", "--random-init", "--device", "cpu",
                 "--precision", "fp32", "--report", str(report)]) == 0
    rows = json.loads(report.read_text())["rows"]
    assert [r["method"] for r in rows] == ["engine", "region growing"]
    assert all(0.0 <= r["dice"] <= 1.0 and 0.0 <= r["nsd"] <= 1.0 for r in rows)
    table = report.with_suffix(".md").read_text()
    assert "| mean | engine |" in table and "| mean | region growing |" in table
    engine, grown = rows
    assert engine["slices"] >= 1 and engine["seconds"] > 0 and "past_end" in engine
    assert "slices" not in grown and grown["seconds"] > 0  # region growing runs in 3D, on no slices


def test_corrective_click_goes_to_the_worst_slice_and_its_largest_error():
    truth = np.zeros((6, 40, 40), bool)
    truth[1:5, 10:30, 10:30] = True
    missed = truth.copy()
    missed[3, 10:30, 10:22] = False  # slice 3 lost most of its left part
    click = corrective_click(missed, truth)
    i, j, k = click["position"]
    assert k == 3 and click["positive"] and truth[k, j, i] and not missed[k, j, i]
    leaked = truth.copy()
    leaked[2, 30:38, 5:35] = True  # a leak below the object on slice 2
    click = corrective_click(leaked, truth)
    i, j, k = click["position"]
    assert k == 2 and not click["positive"] and leaked[k, j, i] and not truth[k, j, i]
    assert corrective_click(truth, truth) is None


def test_corrector_protocol_reports_dice_per_round_and_clicks(tmp_path):
    report = tmp_path / "eval.json"
    assert main(["evaluate", "--synthetic", "1", "--config", "micro_256.yaml", "--random-init", "--device", "cpu",
                 "--precision", "fp32", "--protocol", "corrector", "--rounds", "2", "--report", str(report)]) == 0
    rows = json.loads(report.read_text())["rows"]
    assert [r["method"] for r in rows] == ["engine", "region growing"]
    for row in rows:
        assert len(row["dice_rounds"]) == 3 and row["dice_rounds"][-1] == pytest.approx(row["dice"])
        assert 0 <= row["clicks"] <= 2
    assert " -> " in report.with_suffix(".md").read_text()


def test_evaluate_without_the_baseline_reports_the_engine_alone(tmp_path):
    report = tmp_path / "eval.json"
    for protocol in ("box", "corrector"):
        assert main(["evaluate", "--synthetic", "1", "--config", "micro_256.yaml", "--random-init", "--device", "cpu",
                     "--precision", "fp32", "--protocol", protocol, "--rounds", "1", "--baseline", "none",
                     "--report", str(report)]) == 0
        assert [r["method"] for r in json.loads(report.read_text())["rows"]] == ["engine"]
        assert "region growing" not in report.with_suffix(".md").read_text()


def test_reach_counts_the_slices_run_through_and_how_far_past_the_object():
    from types import SimpleNamespace

    from SegmentWithSAM2Lib.training.evaluation import chain_reach, reach

    truth = np.zeros((20, 4, 4), bool)
    truth[6:12, 1, 1] = True  # the object on slices 6-11
    ran = SimpleNamespace(slices_processed={"forward": 8, "backward": 4}, reached={"forward": 16, "backward": 6})
    assert reach(ran, truth) == {"slices": 12, "past_end": 5}  # forward went on to 16: 5 past slice 11
    early = SimpleNamespace(slices_processed={"backward": 2}, reached={"backward": 8})
    assert reach(early, truth) == {"slices": 2, "past_end": 0}
    chain = np.zeros_like(truth)
    chain[4:13, 2, 2] = True  # masks on 4-12, then an empty slice each way stopped it (3 and 13)
    assert chain_reach(chain, truth) == {"slices": 11, "past_end": 3}
    chain[4:, 2, 2] = True  # on to the volume's last slice: nothing beyond it to run through
    assert chain_reach(chain, truth) == {"slices": 17, "past_end": 8}


def test_baselines_are_named_comma_separated_and_each_is_checked(capsys):
    from SegmentWithSAM2Lib.cli.evaluate import baselines

    assert baselines("region-growing, litemedsam-slices") == "region-growing,litemedsam-slices"
    with pytest.raises(SystemExit):
        main(["evaluate", "--synthetic", "1", "--baseline", "region-growing,litemedsam"])
    error = capsys.readouterr().err
    assert "--baseline" in error and "litemedsam" in error and "litemedsam-slices" in error
