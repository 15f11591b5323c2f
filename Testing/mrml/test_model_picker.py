"""The module's one model picker (item 5, D14): every registry model in the parameter node's order
with its state — shipped, downloaded, partly downloaded, not downloaded with its size — and the
download offered on first use, run by the worker from a real HTTP server on 127.0.0.1."""

import hashlib
import json

import pytest

from SegmentWithSAM2Lib.io.model_zoo import CACHE_ENV, ZOO_ENV, load_registry
from SegmentWithSAM2Lib.mrml.jobs import DownloadRequest, Status
from SegmentWithSAM2Lib.mrml.model_picker import model_choice, model_choices, model_ids
from SegmentWithSAM2Lib.mrml.worker import Worker

from http_server import CheckpointServer, generated_checkpoint

CHECKPOINT = generated_checkpoint()


def test_rows_follow_the_registry_and_say_each_state(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    choices = model_choices()
    assert [c.model_id for c in choices] == model_ids() == list(load_registry())
    micro = model_choice("micro")
    assert (micro.label, micro.ready, micro.offer) == ("micro (shipped)", True, "")
    medsam2 = model_choice("medsam2-latest")
    assert medsam2.label == "medsam2-latest (not downloaded, about 156 MB)" and not medsam2.ready
    assert "huggingface.co" in medsam2.offer and "about 156 MB" in medsam2.offer and "resumes" in medsam2.offer
    large = model_choice("sam2.1-hiera-large")
    assert large.label == "sam2.1-hiera-large (not downloaded, about 898 MB)"
    assert "dl.fbaipublicfiles.com" in large.offer


@pytest.fixture
def served_zoo(tmp_path, monkeypatch):
    with CheckpointServer({"model.pt": CHECKPOINT}) as server:
        zoo = tmp_path / "zoo"
        zoo.mkdir()
        entry = {"id": "served", "family": "sam2.1", "name": "Served model", "config": "medsam2_512.yaml",
                 "image_size": 512, "urls": [f"{server.url}/model.pt"], "approx_size_mb": 1,
                 "sha256": hashlib.sha256(CHECKPOINT).hexdigest(), "license": "test"}
        (zoo / "models.json").write_text(json.dumps({"format_version": 1, "models": [entry]}))
        monkeypatch.setenv(ZOO_ENV, str(zoo))
        monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
        yield server, tmp_path / "cache"


def test_first_use_offers_the_download_and_then_the_model_is_ready(served_zoo):
    server, cache = served_zoo
    before = model_choice("served")
    assert before.label == "served (not downloaded, about 1 MB)" and not before.ready
    assert before.offer.startswith("Served model (served) is not downloaded, about 1 MB. Download it now from 127.0.0.1?")
    cache.mkdir()
    (cache / "model.pt.part").write_bytes(CHECKPOINT[:300_000])  # an earlier download, interrupted
    assert model_choice("served").label == "served (partly downloaded: 0.3 of about 1 MB)"
    worker = Worker()  # the library's own downloader, as the module's "Download it now?" runs it
    try:
        job = worker.submit(DownloadRequest("served"))
        assert job.wait(60) and job.status is Status.DONE, job.message
    finally:
        worker.shutdown()
    after = model_choice("served")
    assert (after.label, after.ready, after.offer) == ("served (downloaded)", True, "")
    assert (cache / "model.pt").read_bytes() == CHECKPOINT
    assert server.requests[-1][1] == "bytes=300000-"  # resumed from the part, not fetched again


def test_a_shipped_model_missing_from_the_install_offers_no_download(tmp_path, monkeypatch):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    entry = {"id": "gone", "family": "sam2.1", "name": "Gone", "config": "micro_256.yaml", "image_size": 256,
             "file": "gone/gone.pt", "urls": []}
    (zoo / "models.json").write_text(json.dumps({"format_version": 1, "models": [entry]}))
    monkeypatch.setenv(ZOO_ENV, str(zoo))
    choice = model_choice("gone")
    assert (choice.label, choice.ready, choice.offer) == ("gone (missing from this install)", False, "")
