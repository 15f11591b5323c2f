"""The Slicer module's job runner (mrml.worker) on a real vtkMRMLScene, with the shipped micro model:
one persistent thread, plain-value requests, progress, cancel, Slicer-phrased errors, finishing."""

import dataclasses
import hashlib
import json
import threading
import time

import numpy as np
import pytest
import slicer
import vtk

from SegmentWithSAM2Lib.errors import NEUTRAL_REMEDIES, Cancelled, Remedy, SegmentWithSAM2Error
from SegmentWithSAM2Lib.io.model_zoo import CACHE_ENV, ZOO_ENV
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.mrml.jobs import (SLICER_REMEDIES, DownloadRequest, SegmentRequest, Status, describe,
                                          segment_request)
from SegmentWithSAM2Lib.mrml.segments import chosen_segment, segment_array, write_segment
from SegmentWithSAM2Lib.mrml.volumes import volume_from_node
from SegmentWithSAM2Lib.mrml.worker import Worker

from http_server import CheckpointServer
from scene_helpers import add_volume

SHAPE = (16, 48, 48)  # k, j, i
SPACING = np.diag([0.8, 0.8, 2.0, 1.0])
FAST = dict(model_id="micro", device="cpu", window="0,300", auto_stop=False)


@pytest.fixture(scope="module")
def micro():
    return load_model("micro", device="cpu", precision="fp32")


class CountingLoader:
    """The injected loader: returns micro, counts calls and the threads they ran on."""

    def __init__(self, model):
        self.model, self.calls, self.threads = model, [], []

    def __call__(self, model_id, checkpoint=None, device="auto"):
        self.calls.append((model_id, checkpoint, device))
        self.threads.append(threading.get_ident())
        return self.model


@pytest.fixture
def loader(micro):
    return CountingLoader(micro)


@pytest.fixture
def worker(loader):
    worker = Worker(load_model=loader)
    yield worker
    worker.shutdown()


@pytest.fixture
def scene():
    scene = slicer.vtkMRMLScene()
    array = np.full(SHAPE, -100, np.int16)
    array[2:14, 14:34, 14:34] = 150
    volume_node = add_volume(scene, array, SPACING)
    return scene, volume_node, scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "segmentation")


def point_prompts(ijk=(24, 24, 8), name="lesion"):
    world = (SPACING @ np.append(ijk, 1.0))[:3].tolist()
    return {"space": "RAS", "objects": [{"name": name, "label": 1, "color": [1, 0, 0],
                                         "points": [{"position": world, "positive": True}]}]}


def ended(job, timeout=60):
    assert job.wait(timeout), f"job still {job.status} after {timeout} s"
    return job


def test_jobs_run_on_one_persistent_thread_and_a_model_is_loaded_once(scene, worker, loader):
    _, volume_node, segmentation = scene
    request, target = segment_request(volume_node, segmentation, point_prompts(), **FAST)
    first, second = ended(worker.submit(request, target)), ended(worker.submit(request, target))
    assert first.status is second.status is Status.DONE
    assert loader.calls == [("micro", None, "cpu")]
    other = ended(worker.submit(dataclasses.replace(request, checkpoint="other.pt"), target))
    assert other.status is Status.DONE and len(loader.calls) == 2
    assert set(loader.threads) == {worker.thread.ident} != {threading.get_ident()}


def test_the_request_holds_plain_values_and_its_own_voxels(scene, worker):
    _, volume_node, segmentation = scene
    prompts = point_prompts()
    request, target = segment_request(volume_node, segmentation, prompts, **FAST)
    for field in dataclasses.fields(request):
        assert not isinstance(getattr(request, field.name), vtk.vtkObjectBase), field.name
    assert not np.shares_memory(request.volume.array, slicer.util.arrayFromVolume(volume_node))
    reference = ended(worker.submit(request, target)).result.labelmap
    # the sources change after the request was taken: what runs does not
    slicer.util.arrayFromVolume(volume_node)[:] = -1000
    volume_node.Modified()
    prompts["objects"][0]["points"][0]["position"] = [500.0, 500.0, 500.0]
    job = ended(worker.submit(request, target))
    assert job.status is Status.DONE and job.result.settings["window"][:2] == [-150.0, 150.0]
    np.testing.assert_array_equal(job.result.labelmap, reference)
    assert reference.any()


def test_progress_reaches_the_total(scene, worker):
    _, volume_node, segmentation = scene
    job = ended(worker.submit(*segment_request(volume_node, segmentation, point_prompts(), **FAST)))
    done, total, text = job.progress
    assert job.status is Status.DONE and done == total == SHAPE[0] + 1  # the prompted slice runs both ways
    assert text.startswith("backward slice 0")


def segments_of(segmentation, volume):
    ids = list(segmentation.GetSegmentation().GetSegmentIDs())
    return ids, [segment_array(segmentation, s, volume) for s in ids]


def test_cancel_during_propagation_ends_cancelled_within_one_slice_and_the_scene_unchanged(scene, worker):
    _, volume_node, segmentation = scene
    volume = volume_from_node(volume_node)
    earlier = np.zeros(SHAPE, bool)
    earlier[3:6, 5:15, 5:15] = True
    write_segment(segmentation, volume_node, volume, earlier, name="earlier", color=(0, 1, 0))
    before_ids, before_masks = segments_of(segmentation, volume)
    job = worker.submit(*segment_request(volume_node, segmentation, point_prompts(), **FAST))
    while job.progress[0] < 2:
        assert not job.wait(0.002), "the run ended before it could be cancelled"
    cancelled_at = job.progress[0]
    threading.Thread(target=job.cancel).start()  # the cancel comes from another thread
    ended(job)
    assert job.status is Status.CANCELLED and job.error is None
    assert job.message == "cancelled; the scene was not changed"
    assert cancelled_at <= job.progress[0] <= cancelled_at + 1 < job.progress[1]
    outcome = worker.finish(job)
    assert outcome.message == job.message and outcome.segment_ids == ()
    ids, masks = segments_of(segmentation, volume)
    assert ids == before_ids and all(np.array_equal(a, b) for a, b in zip(masks, before_masks))


def test_a_bad_prompt_fails_with_a_slicer_message(scene, worker):
    _, volume_node, segmentation = scene
    job = ended(worker.submit(*segment_request(volume_node, segmentation, point_prompts((400, 24, 8)), **FAST)))
    assert job.status is Status.FAILED and isinstance(job.error, SegmentWithSAM2Error)
    assert "outside the volume" in job.message and "--" not in job.message
    assert worker.finish(job).message == job.message
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 0


def test_a_model_not_downloaded_says_press_download(scene, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMENTWITHSAM2_CACHE", str(tmp_path))
    _, volume_node, segmentation = scene
    worker = Worker()  # the library's own loader
    try:
        values = dict(FAST, model_id="medsam2-latest")
        job = ended(worker.submit(*segment_request(volume_node, segmentation, point_prompts(), **values)))
    finally:
        worker.shutdown()
    assert job.status is Status.FAILED
    assert "press Download to fetch medsam2-latest" in job.message and "not downloaded" in job.message
    assert "segment-with-sam2" not in job.message and "--" not in job.message


def test_slicer_remedies_cover_every_action_in_module_words():
    assert set(SLICER_REMEDIES) == set(NEUTRAL_REMEDIES)
    for action, template in SLICER_REMEDIES.items():
        text = template.format(subject="X")
        assert not any(word in text for word in ("segment-with-sam2", "--", "git ", "pip ")), action
        assert describe(SegmentWithSAM2Error("it broke", Remedy(action, "X"))) == f"it broke; {text}"


def test_describe_unforeseen_errors_in_one_line():
    assert describe(RuntimeError("CUDA out of memory.\nTried to allocate")) == \
        "RuntimeError: CUDA out of memory. Tried to allocate"


def test_a_cancelled_download_is_cancelled_not_failed(worker, tmp_path, monkeypatch):
    """A real download from a local server that trickles 1 MiB every 0.1 s, cancelled half way."""
    body = bytes(range(256)) * (8 * 4096)  # 8 MiB
    with CheckpointServer({"model.pt": body}) as server:
        zoo = tmp_path / "zoo"
        zoo.mkdir()
        entry = {"id": "slow", "family": "sam2.1", "name": "slow", "config": "medsam2_512.yaml", "image_size": 512,
                 "urls": [f"{server.url}/trickle/model.pt"], "sha256": hashlib.sha256(body).hexdigest()}
        (zoo / "models.json").write_text(json.dumps({"format_version": 1, "models": [entry]}))
        monkeypatch.setenv(ZOO_ENV, str(zoo))
        monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
        job = worker.submit(DownloadRequest("slow"))
        deadline = time.monotonic() + 30
        while job.progress[0] < 2 and time.monotonic() < deadline:
            job.wait(0.02)
        job.cancel()
        assert ended(job).status is Status.CANCELLED and "Download resumes" in job.message and job.error is None
    part = tmp_path / "cache" / "model.pt.part"
    assert 2 << 20 <= part.stat().st_size < len(body)  # kept, to resume from
    assert not (tmp_path / "cache" / "model.pt").exists()
    assert job.progress[1] == 8 and job.progress[2].startswith("slow: ")

def test_shutdown_is_idempotent_ends_the_thread_and_cancels_queued_jobs(scene, loader):
    _, volume_node, segmentation = scene
    worker = Worker(load_model=loader)
    request, target = segment_request(volume_node, segmentation, point_prompts(), **FAST)
    jobs = [worker.submit(request, target) for _ in range(3)]
    worker.shutdown()
    worker.shutdown()
    assert not worker.thread.is_alive()
    assert all(job.ended for job in jobs) and jobs[-1].status is Status.CANCELLED
    with pytest.raises(RuntimeError, match="shut down"):
        worker.submit(request, target)


def test_finishing_writes_one_segment_equal_to_the_result(scene, worker):
    scene, volume_node, segmentation = scene
    values = dict(FAST, segment_name="lesion", overlap="keep_others")
    job = ended(worker.submit(*segment_request(volume_node, segmentation, point_prompts(), **values)))
    outcome = worker.finish(job)
    assert outcome.segmentation_node is segmentation and len(outcome.segment_ids) == 1
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 1
    written = segment_array(segmentation, outcome.segment_ids[0], volume_from_node(volume_node))
    np.testing.assert_array_equal(written, job.result.labelmap == 1)
    assert written.any() and outcome.message == "wrote 1 segment(s)"


def test_d4_a_preview_then_a_propagation_replace_one_segment_in_place(scene, worker):
    scene, volume_node, segmentation = scene
    other = np.zeros(volume_node.GetImageData().GetDimensions()[::-1], bool)
    other[0, :4, :4] = True  # a segment the user drew: it must stay as it is
    write_segment(segmentation, volume_node, volume_from_node(volume_node), other, name="drawn", color=(0, 0, 1))
    values = dict(FAST, segment_name="lesion", overlap="keep_others")
    preview = ended(worker.submit(*segment_request(volume_node, segmentation, point_prompts(), preview_slice=8,
                                                   **values)))
    first = worker.finish(preview).segment_ids
    run = ended(worker.submit(*segment_request(volume_node, segmentation, point_prompts(), **values)))
    second = worker.finish(run).segment_ids
    names = [segmentation.GetSegmentation().GetNthSegment(n).GetName()
             for n in range(segmentation.GetSegmentation().GetNumberOfSegments())]
    assert first == second and sorted(names) == ["drawn", "lesion"]  # was ['drawn', 'lesion', 'lesion']
    volume = volume_from_node(volume_node)
    np.testing.assert_array_equal(segment_array(segmentation, second[0], volume), run.result.labelmap == 1)
    drawn = segmentation.GetSegmentation().GetSegmentIdBySegmentName("drawn")
    np.testing.assert_array_equal(segment_array(segmentation, drawn, volume), other)


def chosen_prompts(segmentation, segment_id, new_name="new"):
    """What Logic.startSegment builds from the panel's segment selector."""
    segment_id, name, color = chosen_segment(segmentation, segment_id, new_name)
    prompts = point_prompts(name=name)
    prompts["objects"][0]["color"] = list(color)
    return segment_id, name, prompts


def test_the_chosen_segment_is_replaced_in_place_keeping_its_name_and_colour(scene, worker):
    """Item 6: the segment picked in the selector (renamed and recoloured by the user) is what a
    preview and a propagation write; no segment is added and the others keep their voxels."""
    scene, volume_node, segmentation = scene
    volume = volume_from_node(volume_node)
    drawn = np.zeros(volume.array.shape, bool)
    drawn[0, :4, :4] = True
    kept = write_segment(segmentation, volume_node, volume, drawn, name="drawn", color=(0, 0, 1))
    target = write_segment(segmentation, volume_node, volume, np.zeros_like(drawn), name="x", color=(1, 0, 0))
    segmentation.GetSegmentation().GetSegment(target).SetName("Liver (edited)")
    segmentation.GetSegmentation().GetSegment(target).SetColor(0.2, 0.8, 0.3)
    written = []
    for preview in (8, None):
        segment_id, name, prompts = chosen_prompts(segmentation, target)
        job = ended(worker.submit(*segment_request(volume_node, segmentation, prompts, segment_name=name,
                                                   segment_id=segment_id, preview_slice=preview, **FAST)))
        written.append(worker.finish(job).segment_ids)
        np.testing.assert_array_equal(segment_array(segmentation, target, volume), job.result.labelmap == 1)
    segment = segmentation.GetSegmentation().GetSegment(target)
    assert written == [(target,), (target,)] and segmentation.GetSegmentation().GetNumberOfSegments() == 2
    assert segment.GetName() == "Liver (edited)" and np.allclose(segment.GetColor(), (0.2, 0.8, 0.3))
    np.testing.assert_array_equal(segment_array(segmentation, kept, volume), drawn)


def test_a_chosen_segment_deleted_meanwhile_means_a_new_one(scene):
    _, volume_node, segmentation = scene
    volume = volume_from_node(volume_node)
    gone = write_segment(segmentation, volume_node, volume, np.zeros(volume.array.shape, bool), name="x", color=(1, 0, 0))
    segmentation.GetSegmentation().RemoveSegment(gone)
    assert chosen_segment(segmentation, gone, "lesion") == (None, "lesion", (0.9, 0.5, 0.1))
    assert chosen_segment(None, "", "lesion")[:2] == (None, "lesion")


def test_finishing_creates_a_visible_segmentation_only_while_the_volume_is_in_the_scene(scene, worker):
    scene, volume_node, _ = scene
    request, target = segment_request(volume_node, None, point_prompts(), **FAST)
    first, second = ended(worker.submit(request, target)), ended(worker.submit(request, target))
    created = worker.finish(first).segmentation_node
    assert created.GetScene() is scene and created.GetDisplayNode() is not None
    scene.Clear(0)  # File > Close Scene while the second job ran
    outcome = worker.finish(second)
    assert outcome.segmentation_node is None and "dropped" in outcome.message
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 0


def test_a_correction_refines_the_last_result_of_the_same_inputs(scene, worker):
    _, volume_node, segmentation = scene
    request, target = segment_request(volume_node, segmentation, point_prompts(), **FAST)
    ended(worker.submit(request, target))
    session = worker._session
    preview = ended(worker.submit(dataclasses.replace(request, preview_slice=8, correct=True), target))
    assert preview.status is Status.DONE and preview.progress[:2] == (1, 1)
    assert worker._session is session  # the cached slice features were reused
    assert isinstance(request, SegmentRequest) and request.session_key == preview.request.session_key


def test_run_waits_reports_and_raises_for_console_use(scene, worker):
    _, volume_node, segmentation = scene
    request, target = segment_request(volume_node, segmentation, point_prompts(), **FAST)
    seen = []
    outcome = worker.run(request, target, on_progress=lambda *progress: seen.append(progress), poll=0.01)
    assert len(outcome.segment_ids) == 1 and seen[-1][:2] == (SHAPE[0] + 1, SHAPE[0] + 1)
    with pytest.raises(Cancelled, match="scene was not changed"):
        worker.run(request, target, should_cancel=lambda: True, poll=0.01)
    bad, _ = segment_request(volume_node, segmentation, point_prompts((400, 24, 8)), **FAST)
    with pytest.raises(SegmentWithSAM2Error, match="outside the volume"):
        worker.run(bad, target, poll=0.01)
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 1


def test_clear_drops_the_session_and_the_last_result(scene, worker):
    _, volume_node, segmentation = scene
    request, target = segment_request(volume_node, segmentation, point_prompts(), **FAST)
    ended(worker.submit(request, target))
    assert worker._session is not None and worker._last is not None
    assert ended(worker.clear()).status is Status.DONE
    assert worker._session is None and worker._last is None and worker._model is not None
