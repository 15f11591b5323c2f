"""``segment-with-sam2 batch`` embedded, on six real cases on disk (batch_cases): every case's
status in the manifest, outputs equal to the API's, resume that trusts only verified outputs,
locks, shards, and every bad case listed before a model loads."""

from __future__ import annotations

import functools
import json
import os
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from SegmentWithSAM2Lib import api
from SegmentWithSAM2Lib.batch.cases import Case, match_cases, read_cases_file, take_shard
from SegmentWithSAM2Lib.cli import main
from SegmentWithSAM2Lib.io.prompt_file import read_prompt_file
from batch_cases import BAD_PROMPTS, FAILS, GOOD, UNREADABLE, make_dataset

MODEL = ["--model", "micro", "--device", "cpu", "--precision", "fp32"]


@functools.cache
def micro():
    return api.load_model("micro", device="cpu", precision="fp32")


def run_batch(data, out, *extra):
    return main(["batch", str(data["images"]), "--prompts", str(data["prompts"]), "--labels", str(data["labels"]),
                 "--output", str(out), *MODEL, *extra])


def manifest(out) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def statuses(lines) -> dict:
    return {line["case"]: line["status"] for line in lines}


def voxels(path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    data = make_dataset(root)
    out = root / "out"
    code = run_batch(data, out, "--evaluate")
    return data, out, code


@pytest.fixture
def done(first_run, tmp_path):
    """A copy of the first run's dataset and outputs, to change freely."""
    data, out, _ = first_run
    root = tmp_path / "copy"
    shutil.copytree(out.parent, root)
    moved = {key: root / value.relative_to(out.parent) for key, value in data.items() if key != "truths"}
    return moved, root / "out"


def test_every_case_gets_its_status_and_some_failed_exits_3(first_run):
    data, out, code = first_run
    assert code == 3
    assert statuses(manifest(out)) == {**{c: "ok" for c in GOOD}, BAD_PROMPTS: "invalid-prompts", FAILS: "failed",
                                       UNREADABLE: "failed"}
    assert sorted(p.name for p in out.glob("*.nii.gz")) == [f"{c}.nii.gz" for c in GOOD]
    assert "Traceback" in (out / "errors" / f"{FAILS}.txt").read_text()  # failed in propagation
    assert "constant" in (out / "errors" / f"{FAILS}.txt").read_text()
    assert "outside the volume" in (out / "errors" / f"{BAD_PROMPTS}.txt").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["cases"], summary["ok"], summary["failed"], summary["invalid-prompts"]) == (6, 3, 2, 1)


def test_outputs_equal_the_api_voxel_for_voxel_with_a_sidecar_that_describes_them(first_run):
    data, out, _ = first_run
    volume = api.read_volume(data["images"] / "case1.nii.gz")
    prompts = read_prompt_file(data["prompts"] / "case1.json", volume)
    expected = api.segment(micro(), volume, prompts)
    assert np.array_equal(voxels(out / "case1.nii.gz"), expected.labelmap)
    sidecar = json.loads((out / "case1.json").read_text())
    assert sidecar["status"] == "ok" and sidecar["weights"] == micro().weights
    assert sidecar["slices"] == expected.slices_processed
    assert sidecar["request"]["settings"]["stop_after"] == 3
    assert len(sidecar["request"]["image_sha256"]) == 64 and len(sidecar["request"]["prompts_sha256"]) == 64


def test_a_case_prompted_from_its_labelmap_is_scored_against_it(first_run):
    data, out, _ = first_run
    scores = json.loads((out / "case3.json").read_text())["scores"]
    assert list(scores) == ["label 1"] and scores["label 1"]["dice"] > 0.9
    truth = data["truths"]["case3"]
    got = voxels(out / "case3.nii.gz")
    dice = 2 * np.sum((got == 1) & (truth == 1)) / (np.sum(got == 1) + np.sum(truth == 1))
    assert scores["label 1"]["dice"] == pytest.approx(dice)
    evaluation = json.loads((out / "summary.json").read_text())["evaluation"]
    assert list(evaluation["cases"]) == ["case3"] and evaluation["mean_dice"] == pytest.approx(dice, abs=1e-4)


def test_a_rerun_skips_exactly_the_succeeded_cases(done):
    data, out = done
    before = len(manifest(out))
    assert run_batch(data, out) == 3
    again = statuses(manifest(out)[before:])
    assert again == {**{c: "skipped" for c in GOOD}, BAD_PROMPTS: "invalid-prompts", FAILS: "failed",
                     UNREADABLE: "failed"}


def test_changing_one_setting_recomputes_every_case(done):
    data, out = done
    before = len(manifest(out))
    assert run_batch(data, out, "--stop-after", "4") == 3
    assert {c: s for c, s in statuses(manifest(out)[before:]).items() if c in GOOD} == {c: "ok" for c in GOOD}


def test_a_truncated_output_is_recomputed_and_comes_back_whole(done):
    data, out = done
    whole = voxels(out / "case2.nii.gz")
    (out / "case2.nii.gz").write_bytes((out / "case2.nii.gz").read_bytes()[:100])
    before = len(manifest(out))
    run_batch(data, out)
    again = statuses(manifest(out)[before:])
    assert (again["case1"], again["case2"], again["case3"]) == ("skipped", "ok", "skipped")
    assert np.array_equal(voxels(out / "case2.nii.gz"), whole)


def test_a_changed_prompt_file_recomputes_that_case_only(done):
    data, out = done
    prompts = json.loads((data["prompts"] / "case1.json").read_text())
    prompts["objects"][0]["boxes"][0]["corner2"][0] -= 1
    (data["prompts"] / "case1.json").write_text(json.dumps(prompts))
    before = len(manifest(out))
    run_batch(data, out)
    again = statuses(manifest(out)[before:])
    assert (again["case1"], again["case2"], again["case3"]) == ("ok", "skipped", "skipped")


def test_retry_failed_runs_only_the_failures_and_overwrite_runs_all(done):
    data, out = done
    before = len(manifest(out))
    run_batch(data, out, "--retry-failed")
    again = statuses(manifest(out)[before:])
    assert {c: again[c] for c in GOOD} == {c: "skipped" for c in GOOD} and again[FAILS] == "failed"
    before = len(manifest(out))
    run_batch(data, out, "--overwrite")
    assert {c: s for c, s in statuses(manifest(out)[before:]).items() if c in GOOD} == {c: "ok" for c in GOOD}


def test_a_case_locked_by_a_live_process_is_left_to_it_and_a_dead_ones_lock_taken_over(done):
    data, out = done
    (out / "case1.nii.gz").unlink()
    (out / "case2.nii.gz").unlink()
    (out / ".locks" / "case1.lock").write_text(f"{os.uname().nodename} {os.getppid()}")  # alive: pytest's parent
    (out / ".locks" / "case2.lock").write_text(f"{os.uname().nodename} 999999999")  # no such process
    before = len(manifest(out))
    run_batch(data, out)
    lines = {line["case"]: line for line in manifest(out)[before:]}
    assert lines["case1"]["status"] == "skipped" and "lock" in lines["case1"]["error"]
    assert not (out / "case1.nii.gz").exists()
    assert lines["case2"]["status"] == "ok" and (out / "case2.nii.gz").exists()
    assert not (out / ".locks" / "case2.lock").exists()


def test_bad_cases_are_listed_at_once_before_any_model_loads(tmp_path, capsys):
    data = make_dataset(tmp_path)
    for case in GOOD + (FAILS,):
        (data["images"] / f"{case}.nii.gz").unlink()
    (data["labels"] / "case3.nii.gz").unlink()
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    code = main(["batch", str(data["images"]), "--prompts", str(data["prompts"]), "--output", str(tmp_path / "out"),
                 "--checkpoint", str(tmp_path / "broken.pt"), "--config", "micro"])
    err = capsys.readouterr().err
    assert code == 3 and "checkpoint" not in err  # never loaded: nothing was left to run
    assert "2 case(s) cannot run" in err and f"{BAD_PROMPTS}: invalid-prompts" in err and f"{UNREADABLE}: failed" in err


def test_fail_fast_stops_before_the_model_when_a_case_is_bad(tmp_path):
    data = make_dataset(tmp_path)
    out = tmp_path / "out"
    assert run_batch(data, out, "--fail-fast") == 3
    assert not list(out.glob("*.nii.gz"))


def test_a_case_without_any_prompt_source_is_invalid(tmp_path):
    data = make_dataset(tmp_path)
    (data["prompts"] / "case2.json").unlink()
    out = tmp_path / "out"
    run_batch(data, out, "--format", "seg.nrrd")
    lines = {line["case"]: line for line in manifest(out)}
    assert lines["case2"]["status"] == "invalid-prompts" and "has no prompts" in lines["case2"]["error"]
    assert (out / "case1.seg.nrrd").exists()


def test_a_cases_file_names_images_and_prompts_relative_to_itself(tmp_path):
    data = make_dataset(tmp_path)
    (tmp_path / "cases.csv").write_text("case_id,image,prompts,labels\n"
                                        "first,images/case1.nii.gz,prompts/case1.json,\n"
                                        "third,images/case3.nii.gz,,labels/case3.nii.gz\n")
    cases = read_cases_file(tmp_path / "cases.csv")
    assert cases == [Case("first", tmp_path / "images/case1.nii.gz", tmp_path / "prompts/case1.json"),
                     Case("third", tmp_path / "images/case3.nii.gz", None, tmp_path / "labels/case3.nii.gz")]
    (tmp_path / "cases.jsonl").write_text('{"image": "images/case2.nii.gz", "prompts": "prompts/case2.json"}\n')
    assert read_cases_file(tmp_path / "cases.jsonl")[0].case_id == "case2"
    (tmp_path / "twice.csv").write_text("case_id,image\na,images/case1.nii.gz\na,images/case2.nii.gz\n")
    with pytest.raises(Exception, match="appear more than once"):
        read_cases_file(tmp_path / "twice.csv")
    (tmp_path / "odd.csv").write_text("case_id,image,prompt\na,images/case1.nii.gz,x\n")
    with pytest.raises(Exception, match=r"unknown column\(s\) \['prompt'\]"):
        read_cases_file(tmp_path / "odd.csv")


def test_shards_split_the_cases_without_overlap(tmp_path):
    data = make_dataset(tmp_path)
    cases = match_cases(data["images"], data["prompts"])
    parts = [take_shard(cases, (i, 4)) for i in range(4)]
    ids = [c.case_id for part in parts for c in part]
    assert sorted(ids) == sorted(c.case_id for c in cases) and len(set(ids)) == len(ids) == 6
    assert [c.case_id for c in parts[1]] == ["case2", "case6"]


@pytest.mark.parametrize("text", ["4/4", "x", "1/0", "-1/3"])
def test_a_bad_shard_is_refused(text, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["batch", str(tmp_path), "--prompts", str(tmp_path), "--output", str(tmp_path / "o"), f"--shard={text}"])
    assert stopped.value.code == 1
    assert "shard must be I/N with 0 <= I < N" in capsys.readouterr().err


def test_a_missing_checkpoint_is_a_setup_error(tmp_path, capsys):
    data = make_dataset(tmp_path)
    code = main(["batch", str(data["images"]), "--prompts", str(data["prompts"]), "--output", str(tmp_path / "out"),
                 "--checkpoint", str(tmp_path / "no-such.pt"), "--config", "micro"])
    assert code == 1
    assert f"checkpoint not found: {tmp_path / 'no-such.pt'}" in capsys.readouterr().err


def test_dicom_cases_get_a_dicom_seg_and_a_nifti_case_is_refused_before_the_model(tmp_path):
    import pydicom

    from dicom_series import write_ct_series

    data = make_dataset(tmp_path)
    image = sitk.ReadImage(str(data["images"] / "case1.nii.gz"))
    write_ct_series(sitk.Cast(image, sitk.sitkInt16), data["images"] / "ct1")
    shutil.copy(data["prompts"] / "case1.json", data["prompts"] / "ct1.json")
    out = tmp_path / "out"
    assert run_batch(data, out, "--format", "dcm") == 3
    lines = {line["case"]: line for line in manifest(out)}
    assert lines["ct1"]["status"] == "ok" and lines["case1"]["status"] == "failed"
    assert "DICOM-SEG can only be written for a DICOM series input" in lines["case1"]["error"]
    assert lines["case1"]["worker"] == "check"
    seg = pydicom.dcmread(out / "ct1.dcm")
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and seg.SegmentSequence[0].SegmentLabel == "ball"


def test_the_embedded_batch_never_imports_ray_and_jsonl_progress_is_one_event_per_line(tmp_path):
    import subprocess
    import sys

    data = make_dataset(tmp_path)
    script = ("import sys; from SegmentWithSAM2Lib.cli import main; "
              f"code = main(['batch', {str(data['images'])!r}, '--prompts', {str(data['prompts'])!r}, '--output', "
              f"{str(tmp_path / 'out')!r}, '--progress', 'jsonl', '--model', 'micro', '--device', 'cpu']); "
              "assert 'ray' not in sys.modules, 'ray was imported'; sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0] == {"event": "start", "cases": 6}
    assert sorted(e["case"] for e in events[1:]) == sorted(GOOD + (BAD_PROMPTS, FAILS, UNREADABLE))
    assert events[-1]["totals"] == {"ok": 2, "failed": 2, "skipped": 0, "invalid-prompts": 2}  # case3: no labels


def test_a_preset_batch_writes_the_apis_preset_result_and_records_it(tmp_path):
    """Issue 21: ``batch --preset medsam2`` runs MedSAM2's pipeline per case, as the API does, and
    the sidecar's settings name the preset (a change of preset recomputes a case)."""
    data = make_dataset(tmp_path)
    out = tmp_path / "out"
    run_batch(data, out, "--preset", "medsam2", "--window", "medsam2:80,300")
    volume = api.read_volume(data["images"] / "case1.nii.gz")
    prompts = read_prompt_file(data["prompts"] / "case1.json", volume)
    expected = api.segment(micro(), volume, prompts, preset="medsam2", window="medsam2:80,300")
    assert np.array_equal(voxels(out / "case1.nii.gz"), expected.labelmap)
    settings = json.loads((out / "case1.json").read_text())["request"]["settings"]
    assert settings["preset"] == "medsam2" and settings["window"] == "medsam2:80,300"
    assert expected.slices_processed == {"forward": 6, "backward": 7}  # every slice from the key slice
