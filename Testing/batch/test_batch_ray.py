"""``batch --ray local`` on a real local Ray cluster: the same outputs voxel for voxel as the
embedded run, the same manifest statuses and exit code, and a worker process killed mid-batch
has its case retried elsewhere until the batch completes."""

from __future__ import annotations

import json
import os
import shutil
import signal

import numpy as np
import pytest

pytest.importorskip("ray")  # the [ray] extra; make test installs it  # noqa: E402

from SegmentWithSAM2Lib.batch.cases import match_cases
from SegmentWithSAM2Lib.batch.embedded import Batch, BatchRequest
from SegmentWithSAM2Lib.batch.inputs import PromptSource
from SegmentWithSAM2Lib.batch.ray_driver import run_on_ray
from SegmentWithSAM2Lib.batch.records import Outputs
from SegmentWithSAM2Lib.cli import main
from SegmentWithSAM2Lib.core.postprocess import PostProcess
from batch_cases import BAD_PROMPTS, FAILS, GOOD, UNREADABLE, make_dataset
from test_batch import MODEL, manifest, statuses, voxels

MICRO = {"model": "micro", "checkpoint": None, "config": None, "random_init": False, "seed": 0, "device": "cpu",
         "precision": "fp32", "adapters": [], "merge_adapters": False}


def test_ray_local_writes_what_the_embedded_batch_writes(tmp_path):
    data = make_dataset(tmp_path)
    args = ["batch", str(data["images"]), "--prompts", str(data["prompts"]), "--labels", str(data["labels"]), *MODEL]
    assert main([*args, "--output", str(tmp_path / "embedded")]) == 3
    assert main([*args, "--output", str(tmp_path / "ray"), "--ray", "local", "--workers", "2"]) == 3
    lines = manifest(tmp_path / "ray")
    assert statuses(lines) == {**{c: "ok" for c in GOOD}, BAD_PROMPTS: "invalid-prompts", FAILS: "failed",
                               UNREADABLE: "failed"}
    assert {line["worker"] for line in lines if line["case"] in GOOD} - {"check"}  # ran on the actors
    for case in GOOD:
        assert np.array_equal(voxels(tmp_path / "ray" / f"{case}.nii.gz"), voxels(tmp_path / "embedded" / f"{case}.nii.gz"))
        ray_side = json.loads((tmp_path / "ray" / f"{case}.json").read_text())
        assert ray_side["request"] == json.loads((tmp_path / "embedded" / f"{case}.json").read_text())["request"]
    assert "constant" in (tmp_path / "ray" / "errors" / f"{FAILS}.txt").read_text()  # the actor's traceback
    # the embedded run's outputs are trusted by a Ray run over the same folder, and the reverse
    assert main([*args, "--output", str(tmp_path / "embedded"), "--ray", "local"]) == 3
    assert {c: s for c, s in statuses(manifest(tmp_path / "embedded")[-6:]).items() if c in GOOD} == \
        {c: "skipped" for c in GOOD}


def test_a_worker_killed_mid_batch_has_its_case_retried_and_the_batch_completes(tmp_path):
    data = make_dataset(tmp_path)
    for n in range(4, 9):  # eight good cases: both workers stay busy
        shutil.copy(data["images"] / "case1.nii.gz", data["images"] / f"extra{n}.nii.gz")
        shutil.copy(data["prompts"] / "case1.json", data["prompts"] / f"extra{n}.json")
    for case in (BAD_PROMPTS, FAILS, UNREADABLE):
        (data["images"] / f"{case}.nii.gz").unlink()
    cases = match_cases(data["images"], data["prompts"], data["labels"])
    request = BatchRequest({"model": "micro"}, {"postprocess": PostProcess()}, PromptSource())
    killed, pids = [], []

    def kill_once(event):
        if event["status"] == "ok" and not killed:
            killed.append(pids[0])
            os.kill(pids[0], signal.SIGKILL)

    batch = Batch(cases, Outputs(tmp_path / "out", ".nii.gz"), request, kill_once)
    todo, bad = batch.check()
    assert not bad and len(todo) == 8
    run_on_ray(batch, todo, MICRO, None, address="local", workers=2, max_retries=2,
               on_workers=lambda identities: pids.extend(pid for _, pid in identities))
    lines = manifest(tmp_path / "out")
    died = [line for line in lines if "worker died" in line["error"]]
    assert killed and died and all(line["attempt"] == 1 and line["status"] == "failed" for line in died)
    for line in died:
        assert [x["status"] for x in lines if x["case"] == line["case"] and x["attempt"] == 2] == ["ok"]
    assert batch.summary()["ok"] == 8 and batch.summary()["failed"] == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.nii.gz")) == sorted(f"{c.case_id}.nii.gz" for c in cases)
    assert not list((tmp_path / "out" / ".locks").iterdir())
