"""The Slicer module's worker in "Run on: server" mode, in a Python where torch and sam2 cannot be
imported (a child process blocks them), against a real uvicorn on 127.0.0.1: on a real
vtkMRMLScene it writes the same segments, voxel for voxel, as the worker running micro here, for
a propagation, a correction re-propagated from a slice, and a one-slice preview."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.remote.tokens import TokenBook, digest
from serving import blob_volume, point_prompts, running

TOKEN = "slicer-user-token-0123456789"
MRML_HELPERS = Path(__file__).resolve().parents[1] / "mrml"

# (request values) of the runs, in order, on one volume node and one segmentation
RUNS = [dict(prompts=point_prompts(8)),
        dict(prompts=point_prompts(8, (30, 20)), correct=True, from_slice=8),
        dict(prompts=point_prompts(5), preview_slice=5)]

CHILD = textwrap.dedent("""
    import json, sys
    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "sam2", "torchvision"):
                raise ImportError(f"{name} is blocked: this Python has no torch")
    sys.meta_path.insert(0, NoTorch())
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import slicer
    from scene_helpers import add_volume
    from SegmentWithSAM2Lib.mrml.jobs import segment_request
    from SegmentWithSAM2Lib.mrml.segments import segment_array
    from SegmentWithSAM2Lib.mrml.volumes import volume_from_node
    from SegmentWithSAM2Lib.mrml.worker import Worker
    # and every library module the panel and the effect import when Slicer loads them
    import SegmentWithSAM2Lib.mrml.markups, SegmentWithSAM2Lib.mrml.model_picker, SegmentWithSAM2Lib.mrml.slicer_version
    import SegmentWithSAM2Lib.mrml.editor_writes, SegmentWithSAM2Lib.mrml.prompt_markers, SegmentWithSAM2Lib.dependencies
    import SegmentWithSAM2Lib.io.model_zoo, SegmentWithSAM2Lib.core.geometry
    data, runs = np.load(sys.argv[2]), json.loads(sys.argv[3])
    scene = slicer.vtkMRMLScene()
    node = add_volume(scene, data["voxels"], data["ijk_to_ras"])
    worker, segmentation, out = Worker(), None, {}
    for n, values in enumerate(runs):
        request, target = segment_request(node, segmentation, values.pop("prompts"), **values)
        outcome = worker.run(request, target)
        segmentation = outcome.segmentation_node
        out[f"run{n}"] = segment_array(segmentation, outcome.segment_ids[0], volume_from_node(node))
    worker.shutdown()
    np.savez(sys.argv[4], **out)
    print(json.dumps({"imported": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sam2"))}))
""")


def scene_runs(runs, tmp_path, **common):
    """The runs through the worker on a fresh scene in a child process; the segments' arrays."""
    volume, _ = blob_volume()
    np.savez(tmp_path / "volume.npz", voxels=volume.array, ijk_to_ras=volume.ijk_to_ras)
    runs = [dict(r, **common) for r in runs]
    done = subprocess.run([sys.executable, "-c", CHILD, str(MRML_HELPERS), str(tmp_path / "volume.npz"),
                           json.dumps(runs), str(tmp_path / "segments.npz")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), dict(np.load(tmp_path / "segments.npz"))


@pytest.fixture(scope="module")
def micro():
    return load_model("micro", device="cpu", precision="fp32")


def test_server_mode_needs_no_torch_and_writes_what_local_writes(micro, tmp_path_factory):
    folder = tmp_path_factory.mktemp("slicer")
    tokens = TokenBook({"radiologist": digest(TOKEN)})
    with running({"micro": micro}, folder, tokens) as (url, _):
        (folder / "remote").mkdir()
        report, remote = scene_runs(RUNS, folder / "remote", model_id="micro", window="0,300",
                                    server=[url, TOKEN])
    assert report["imported"] == []  # neither torch nor sam2 was imported, even lazily
    (folder / "local").mkdir()
    _, local = _local_runs(micro, folder / "local")
    for name in local:
        assert np.array_equal(remote[name], local[name]), name
    assert remote["run0"].any() and not np.array_equal(remote["run0"], remote["run1"])  # the correction changed it
    assert np.flatnonzero(remote["run2"].any(axis=(1, 2))).tolist() == [5]  # a preview: its slice alone


def _local_runs(micro, folder):
    """The same runs on this computer (torch here), in this process, on a real scene."""
    import slicer

    sys.path.insert(0, str(MRML_HELPERS))
    from scene_helpers import add_volume
    from SegmentWithSAM2Lib.mrml.jobs import segment_request
    from SegmentWithSAM2Lib.mrml.segments import segment_array
    from SegmentWithSAM2Lib.mrml.volumes import volume_from_node
    from SegmentWithSAM2Lib.mrml.worker import Worker

    volume, _ = blob_volume()
    scene = slicer.vtkMRMLScene()
    node = add_volume(scene, volume.array, volume.ijk_to_ras)
    worker, segmentation, out = Worker(load_model=lambda *a, **k: micro), None, {}
    for n, values in enumerate(RUNS):
        values = dict(values)
        request, target = segment_request(node, segmentation, values.pop("prompts"), model_id="micro",
                                          window="0,300", device="cpu", **values)
        outcome = worker.run(request, target)
        segmentation = outcome.segmentation_node
        out[f"run{n}"] = segment_array(segmentation, outcome.segment_ids[0], volume_from_node(node))
    worker.shutdown()
    return None, out
