"""The server and its Python client against the library run in-process, on a real uvicorn on
127.0.0.1: the same masks voxel for voxel (micro and a random-weights MedSAM2), corrections,
previews, mask prompts, cancel, expiry and re-seed, and an image uploaded once."""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest

from SegmentWithSAM2Lib import api
from SegmentWithSAM2Lib.core.engine import VolumeSession
from SegmentWithSAM2Lib.errors import Cancelled
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.remote import Client, SessionExpired
from SegmentWithSAM2Lib.remote.leases import Limits
from serving import audit_events, blob_volume, point_prompts, running


@functools.cache
def micro():
    return load_model("micro", device="cpu", precision="fp32")


def same_result(remote, local):
    assert np.array_equal(remote.labelmap, local.labelmap) and remote.labelmap.dtype == local.labelmap.dtype
    assert remote.settings == local.settings
    assert remote.slices_processed == local.slices_processed and remote.reached == local.reached
    assert [(o.name, o.label, o.color, sorted(o.slices)) for o in remote.objects] == \
        [(o.name, o.label, o.color, sorted(o.slices)) for o in local.objects]
    for mine, theirs in zip(remote.objects, local.objects):
        assert all(mine.slices[k].same_as(theirs.slices[k]) for k in theirs.slices)


@pytest.fixture(scope="module")
def micro_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("server")
    with running({"micro": micro()}, folder) as (url, service):
        yield url, service, folder


def test_remote_propagation_and_correction_equal_local(micro_server):
    url, _, _ = micro_server
    volume, truth = blob_volume()
    client = Client(url)
    local, remote = api.segment(micro(), volume, point_prompts(8)), client.segment(volume, point_prompts(8))
    same_result(remote, local)
    assert remote.labelmap[truth].mean() > 0.5  # micro found the blob: the comparison is of a real mask
    corrected = point_prompts(8, (30, 20))
    local2 = api.segment(micro(), volume, corrected, previous=local)
    remote2 = client.segment(volume, corrected, previous=remote)
    same_result(remote2, local2)
    assert not np.array_equal(local2.labelmap, local.labelmap)  # the negative click changed something
    with pytest.raises(ValueError, match="not this session's latest"):
        client.segment(volume, corrected, previous=remote)  # an older result of the session
    client.close()


def test_preview_and_mask_prompt_equal_local(micro_server):
    url, _, _ = micro_server
    volume, truth = blob_volume()
    client = Client(url)
    session = VolumeSession(micro(), volume)
    same_result(client.preview(volume, point_prompts(8), 8), session.preview(point_prompts(8), 8))
    mask = np.zeros(volume.array.shape, dtype=bool)
    mask[8] = truth[8]
    prompts = {"space": "IJK", "objects": [{"name": "m", "label": 3, "masks": [{"slice": 8, "mask": mask}]}]}
    same_result(client.segment(volume, prompts, direction="forward"),
                api.segment(micro(), volume, prompts, direction="forward"))
    client.close()


def test_random_weights_medsam2_remote_equals_local(medsam2_random, tmp_path):
    volume, _ = blob_volume(slices=6)
    options = {"slice_range": (2, 4), "window": "40,400"}
    with running({"medsam2": medsam2_random}, tmp_path) as (url, _):
        client = Client(url)
        remote = client.segment(volume, point_prompts(3), **options)
        client.close()
    same_result(remote, api.segment(medsam2_random, volume, point_prompts(3), **options))


def test_cancel_keeps_the_earlier_result(micro_server):
    url, _, _ = micro_server
    volume, _ = blob_volume(slices=40, seed=1)
    client = Client(url)
    first = client.segment(volume, point_prompts(20))
    progress = []
    with pytest.raises(Cancelled, match="keeps its earlier result"):
        client.segment(volume, point_prompts(20, (30, 22)), previous=first,
                       on_progress=lambda *a: progress.append(a), should_cancel=lambda: bool(progress))
    assert len(progress) < sum(first.slices_processed.values())  # it stopped early
    corrected = point_prompts(20, (30, 22))  # the session still corrects the first result
    local_first = api.segment(micro(), volume, point_prompts(20))
    same_result(client.segment(volume, corrected, previous=first),
                api.segment(micro(), volume, corrected, previous=local_first))
    client.close()


def test_expired_lease_is_reseeded_from_the_clients_requests(tmp_path):
    volume, _ = blob_volume()
    with running({"micro": micro()}, tmp_path, limits=Limits(lease_seconds=0.5)) as (url, service):
        client = Client(url, heartbeat=False)
        first = client.segment(volume, point_prompts(8))
        old = client.session(volume).id
        _wait(lambda: not service.book.live())
        corrected = point_prompts(8, (30, 20))
        remote = client.segment(volume, corrected, previous=first)
        assert client.session(volume).id != old
        client.close()
    local = api.segment(micro(), volume, point_prompts(8))
    same_result(remote, api.segment(micro(), volume, corrected, previous=local))
    events = [e["event"] for e in audit_events(tmp_path)]
    assert events.count("expire") == 1 and events.count("upload") == 1  # the re-seed sent no voxels


def test_idle_lease_expires_despite_heartbeats(tmp_path):
    volume, _ = blob_volume()
    with running({"micro": micro()}, tmp_path, limits=Limits(lease_seconds=30, idle_seconds=0.4)) as (url, service):
        session = Client(url, heartbeat=False).session(volume)
        session.heartbeat()
        _wait(lambda: not service.book.live())
        with pytest.raises(SessionExpired, match="410.*expired"):
            session.heartbeat()


def test_second_session_uploads_nothing(micro_server):
    url, service, folder = micro_server
    volume, _ = blob_volume(seed=7)
    uploads = lambda: [e for e in audit_events(folder) if e["event"] == "upload"]
    before = len(uploads())
    for _ in range(2):
        client = Client(url)
        client.segment(volume, point_prompts(8))
        client.close()
    assert len(uploads()) == before + 1
    assert uploads()[-1]["outcome"] == "stored" and uploads()[-1]["bytes"] > 0


def test_audit_log_names_who_what_and_how_it_ended(micro_server):
    url, _, folder = micro_server
    volume, _ = blob_volume(seed=3)
    client = Client(url)
    client.segment(volume, point_prompts(8))
    client.close()
    events = audit_events(folder)
    run = [e for e in events if e["event"] == "propagate"][-1]
    assert run["outcome"] == "ok" and run["token"] == "local" and len(run["prompts"]) == 64
    assert run["model"] == "micro" and run["weights"] == micro().weights and len(run["image"]) == 64
    assert [e["event"] for e in events if e.get("session") == run["session"]] == ["open", "propagate", "close"]
    assert all(not isinstance(v, (list, dict)) for e in events for v in e.values())  # no pixels, no prompts


def _wait(condition, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_client_replays_only_what_it_needs(tmp_path):
    """A fresh propagation after an expiry needs no replay: the new session runs it alone."""
    volume, _ = blob_volume()
    with running({"micro": micro()}, tmp_path, limits=Limits(lease_seconds=0.5)) as (url, service):
        client = Client(url, heartbeat=False)
        client.segment(volume, point_prompts(8))
        _wait(lambda: not service.book.live())
        client.segment(volume, point_prompts(9))
        client.close()
    runs = [e for e in audit_events(tmp_path) if e["event"] == "propagate"]
    assert len(runs) == 2



def test_clicks_on_one_image_read_and_hash_it_once(micro_server, tmp_path, monkeypatch):
    """A file or an array clicked on again is neither read again nor hashed again; a changed file is."""
    import SimpleITK as sitk

    from SegmentWithSAM2Lib.remote import client as client_module

    url, _, _ = micro_server
    volume, _ = blob_volume(seed=5)
    image = sitk.GetImageFromArray(volume.array)
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(image, str(path))
    hashed, original = [], client_module.image_id
    monkeypatch.setattr(client_module, "image_id", lambda *a: hashed.append(1) or original(*a))
    client = Client(url)
    for k in (7, 8, 9):
        client.preview(path, point_prompts(k), k)
    assert len(hashed) == 1
    image.SetOrigin((1.0, 2.0, 3.0))
    sitk.WriteImage(image, str(path))
    client.preview(path, point_prompts(8), 8)
    assert len(hashed) == 2
    client.close()
