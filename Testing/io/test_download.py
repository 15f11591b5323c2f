"""Checkpoint downloads against a real HTTP server on 127.0.0.1 (nothing leaves the machine)."""

import hashlib
import json
import multiprocessing
import shutil

import pytest

from SegmentWithSAM2Lib.cli import main
from SegmentWithSAM2Lib.io.model_zoo import CACHE_ENV, ZOO_ENV, model_zoo_dir
from SegmentWithSAM2Lib.errors import DownloadError
from SegmentWithSAM2Lib.io.download import fetch, pinned_hash
from SegmentWithSAM2Lib.io.model_cache import cache_entry as entry, download_model, remove_model

from http_server import CheckpointServer, generated_checkpoint


CHECKPOINT = generated_checkpoint()
SHA = hashlib.sha256(CHECKPOINT).hexdigest()


@pytest.fixture
def server():
    with CheckpointServer({"model.pt": CHECKPOINT}) as running:
        yield running


@pytest.fixture
def zoo(tmp_path, monkeypatch, server):
    """A registry of our own whose models point at the local server; a fresh cache."""
    folder = tmp_path / "zoo"
    shutil.copytree(model_zoo_dir() / "configs", folder / "configs")
    entries = [{"id": model_id, "family": "sam2.1", "name": model_id, "config": "medsam2_512.yaml", "image_size": 512,
                "urls": [f"{server.url}/{path}"], "size_bytes": len(CHECKPOINT), "sha256": sha, "license": "test",
                "modalities": ["CT"], "window": "auto"}
               for model_id, path, sha in (("published", "model.pt", SHA), ("unpublished", "model.pt", None),
                                           ("wrong-hash", "model.pt", "0" * 64))]
    entries.append(dict(entries[0], id="shipped", urls=[], file="shipped/model.pt"))  # like micro
    (folder / "shipped").mkdir()
    (folder / "shipped" / "model.pt").write_bytes(CHECKPOINT)
    (folder / "models.json").write_text(json.dumps({"format_version": 1, "models": entries}))
    monkeypatch.setenv(ZOO_ENV, str(folder))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_clean_download_verifies_and_reports_progress(zoo, server):
    seen = []
    path = download_model("published", on_progress=seen.append)
    assert path.read_bytes() == CHECKPOINT and path.name == "model.pt"
    assert seen[-1].done == seen[-1].total == len(CHECKPOINT) and seen[-1].bytes_per_second > 0
    assert entry("published", check=True).state == "verified"
    assert sorted(p.name for p in zoo.iterdir()) == ["model.pt", "model.pt.lock"]
    download_model("published")  # already there and verified: no second request
    assert len(server.requests) == 1


def test_dropped_connection_resumes_from_the_partial_file(tmp_path, server):
    target = tmp_path / "cache" / "model.pt"
    with pytest.raises(DownloadError, match="interrupted after .*; run it again; the download resumes"):
        fetch(f"{server.url}/drop/model.pt", target, SHA)
    part = target.with_name("model.pt.part")
    assert part.stat().st_size == len(CHECKPOINT) // 2 and not target.exists()
    fetch(f"{server.url}/drop/model.pt", target, SHA)
    assert target.read_bytes() == CHECKPOINT and not part.exists()
    assert server.requests[-1] == ("/drop/model.pt", f"bytes={len(CHECKPOINT) // 2}-")


def test_wrong_checksum_deletes_the_download_and_names_both_hashes(zoo):
    with pytest.raises(DownloadError) as error:
        download_model("wrong-hash")
    assert f"expected {'0' * 64}, got {SHA}" in str(error.value)
    assert not (zoo / "model.pt").exists() and not (zoo / "model.pt.part").exists()


def test_unpublished_hash_is_pinned_by_the_first_download(zoo, server):
    download_model("unpublished")
    assert pinned_hash(zoo / "model.pt") == SHA and entry("unpublished", check=True).state == "verified"
    (zoo / "model.pt").unlink()  # the cached file lost, its pin kept
    server.files["model.pt"] = changed = generated_checkpoint(seed=1)  # the file behind the URL changed
    with pytest.raises(DownloadError, match=f"expected {SHA}"):
        download_model("unpublished")
    assert remove_model("unpublished") and pinned_hash(zoo / "model.pt") is None  # remove clears the pin
    download_model("unpublished")
    assert pinned_hash(zoo / "model.pt") == hashlib.sha256(changed).hexdigest()


def test_404_timeout_and_offline_are_clear(tmp_path, server):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(f"{server.url}/absent.pt", tmp_path / "absent.pt")
    with pytest.raises(DownloadError, match=r"cannot reach .*timed out.*timeout 0.5 s"):
        fetch(f"{server.url}/slow/model.pt", tmp_path / "slow.pt", timeout=0.5)
    before = len(server.requests)
    with pytest.raises(DownloadError, match="offline mode: model.pt is not in the cache"):
        fetch(f"{server.url}/model.pt", tmp_path / "model.pt", SHA, offline=True)
    assert len(server.requests) == before  # no connection was made
    (tmp_path / "model.pt").write_bytes(b"not the published checkpoint")  # damaged or replaced in the cache
    with pytest.raises(DownloadError, match="model.pt does not match its checksum.*delete .*model.pt and download it again"):
        fetch(f"{server.url}/model.pt", tmp_path / "model.pt", SHA, offline=True)
    assert len(server.requests) == before


def _download_in_process(url, target, results):
    try:
        fetch(url, target, SHA)
        results.put("ok")
    except Exception as error:  # reported to the parent
        results.put(repr(error))


def test_two_processes_downloading_one_file_do_not_corrupt_it(tmp_path, server):
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    target = tmp_path / "cache" / "model.pt"
    workers = [context.Process(target=_download_in_process, args=(f"{server.url}/model.pt", target, results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [results.get(timeout=5) for _ in workers] == ["ok", "ok"]
    assert target.read_bytes() == CHECKPOINT and len(server.requests) == 1


def test_cli_download_verify_remove(zoo, capsys):
    assert main(["download", "published"]) == 0
    assert main(["verify", "published"]) == 0 and "verified" in capsys.readouterr().out
    (zoo / "model.pt").write_bytes(b"tampered")
    assert main(["verify", "published"]) == 1 and "mismatch" in capsys.readouterr().err
    assert main(["remove", "published"]) == 0 and not (zoo / "model.pt").exists()
    assert main(["models"]) == 0 and "absent" in capsys.readouterr().out


def test_segment_download_flag_and_offline_environment(zoo, server, monkeypatch):
    from SegmentWithSAM2Lib.api import load_model
    from SegmentWithSAM2Lib.io.model_cache import OFFLINE_ENV

    monkeypatch.setenv(OFFLINE_ENV, "1")
    with pytest.raises(DownloadError, match="offline mode: model.pt is not in the cache"):
        load_model("published", download=True, device="cpu")
    assert server.requests == []
    monkeypatch.delenv(OFFLINE_ENV)
    with pytest.raises(Exception, match="does not fit config"):  # fetched, then refused: not a sam2 checkpoint
        load_model("published", download=True, device="cpu")
    assert (zoo / "model.pt").read_bytes() == CHECKPOINT


def test_a_shipped_checkpoint_is_verified_and_never_downloaded(zoo, server):
    shipped = zoo.parent / "zoo" / "shipped" / "model.pt"
    assert download_model("shipped") == shipped
    shipped.write_bytes(b"edited by hand")
    with pytest.raises(DownloadError, match="shipped/model.pt does not match its checksum.*; restore .*shipped/model.pt from the project's files"):
        download_model("shipped")
    shipped.unlink()
    with pytest.raises(DownloadError, match="ships with the project but is missing; restore .*model.pt from the project's files"):
        download_model("shipped")
    assert not server.requests  # never a download


def test_a_hubs_reported_hash_verifies_the_first_download(zoo, server):
    server.hub_hashes["model.pt"] = "f" * 64  # what the hub says the file is: not what it serves
    with pytest.raises(DownloadError, match=f"checksum mismatch .*expected {'f' * 64}"):
        download_model("unpublished")
    assert pinned_hash(zoo / "model.pt") is None and not (zoo / "model.pt").exists()
    server.hub_hashes["model.pt"] = SHA
    download_model("unpublished")
    assert pinned_hash(zoo / "model.pt") == SHA


def test_repin_replaces_a_pin_on_purpose(zoo, server):
    download_model("unpublished")
    server.files["model.pt"] = changed = generated_checkpoint(seed=2)
    (zoo / "model.pt").unlink()
    with pytest.raises(DownloadError, match="checksum mismatch"):  # the pin holds...
        download_model("unpublished")
    assert main(["download", "unpublished", "--repin"]) == 0
    assert pinned_hash(zoo / "model.pt") == hashlib.sha256(changed).hexdigest()
    assert (zoo / "model.pt").read_bytes() == changed
