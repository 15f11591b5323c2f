"""``preset="medsam2"`` against MedSAM2's CT pipeline built here step by step from its description
(issue 21), not from its code: clip to the window, rescale the clipped volume's own min..max to
0..255 and truncate to uint8; /255 and ImageNet normalisation; sam2's official video predictor
(its own build, whose default fills holes of up to 8 px in the low-resolution masks: the CUDA
labelling is replaced by an 8-connected scipy labelling here), a box on the key slice, a forward
pass, a reset, a backward pass, the union of both, and the largest 26-connected 3D component.
A random-weights micro model, so the masks are ragged enough for every step to matter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from sam2 import sam2_video_predictor
from sam2.build_sam import build_sam2_video_predictor
from sam2.utils import misc

from SegmentWithSAM2Lib import api
from SegmentWithSAM2Lib.io.model_zoo import resolve_config
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.core.volume import Volume

SIZE, SLICES, KEY = 256, 9, 4
LOWER, UPPER = -1350.0, 150.0  # MedSAM2's lung window as bounds (centre -600, width 1500)
BOX = [70, 60, 190, 170]  # x_min, y_min, x_max, y_max on the key slice, in pixels
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def volume():
    """int16 HU: air, a body, a lung-like dark region and a bright nodule; per-slice noise."""
    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    slices = []
    for k in range(SLICES):
        body = ((x - 128) / 110) ** 2 + ((y - 128) / 95) ** 2 <= 1
        lung = ((x - 125 - 2 * k) / 55) ** 2 + ((y - 115) / 50) ** 2 <= 1
        hu = np.where(body, 40.0, -1024.0)
        hu[lung] = -850.0
        hu[((x - 130) / (14 - abs(k - KEY))) ** 2 + ((y - 118) / 12) ** 2 <= 1] = 60.0
        slices.append(hu + rng.normal(0, 30, hu.shape))
    return Volume.from_lps(np.round(np.stack(slices)).astype(np.int16), np.eye(4), {"modality": "CT"})


@pytest.fixture(scope="module")
def micro_random(tmp_path_factory):
    model = load_model("micro", random_init=True, seed=4, device="cpu", precision="fp32")
    checkpoint = tmp_path_factory.mktemp("micro") / "micro_random.pt"
    torch.save({"model": model.predictor.state_dict()}, checkpoint)
    return model, checkpoint


def eight_connected_components(mask):
    """sam2's get_connected_components contract: per-pixel component labels and areas (N, 1, H, W)."""
    planes = mask.cpu().numpy()[:, 0].astype(bool)
    labels, areas = np.zeros(planes.shape, np.int32), np.zeros(planes.shape, np.int32)
    for n, plane in enumerate(planes):
        labels[n], _ = ndimage.label(plane, structure=np.ones((3, 3)))
        counts = np.bincount(labels[n].ravel())
        areas[n] = np.where(labels[n] > 0, counts[labels[n]], 0)
    return torch.from_numpy(labels[:, None]), torch.from_numpy(areas[:, None])


def medsam2_reference(volume, checkpoint, monkeypatch, fill_holes=True, largest=True) -> np.ndarray:
    image = np.clip(volume.array, LOWER, UPPER)
    image = np.uint8((image - image.min()) / (image.max() - image.min()) * 255.0)
    frames = torch.from_numpy(image.astype(np.float32))[:, None].expand(-1, 3, -1, -1) / 255.0
    frames = (frames - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    monkeypatch.setattr(sam2_video_predictor, "load_video_frames", lambda **_: (frames, SIZE, SIZE))
    monkeypatch.setattr(misc, "get_connected_components", eight_connected_components)
    config = resolve_config("micro_256.yaml").resolve()
    predictor = build_sam2_video_predictor("/" + str(config), str(checkpoint), device="cpu")
    assert predictor.fill_hole_area == 8  # sam2's own default, which MedSAM2's scripts keep
    predictor.fill_hole_area = 8 if fill_holes else 0
    union = np.zeros(volume.array.shape, dtype=bool)
    state = predictor.init_state(video_path="in-memory")
    for reverse in (False, True):
        predictor.add_new_points_or_box(state, KEY, 1, box=np.array(BOX, dtype=np.float32))
        for k, _, logits in predictor.propagate_in_video(state, start_frame_idx=KEY, reverse=reverse):
            union[k] |= (logits[0, 0] > 0).numpy()
        predictor.reset_state(state)
    if largest and union.any():
        components, _ = ndimage.label(union, structure=np.ones((3, 3, 3)))
        union = components == np.argmax(np.bincount(components.ravel())[1:]) + 1
    return union


def ours(model, volume):
    box = {"corner1": [BOX[0], BOX[1], KEY], "corner2": [BOX[2], BOX[3], KEY]}
    prompts = {"space": "IJK", "objects": [{"name": "nodule", "label": 1, "boxes": [box]}]}
    return api.segment(model, volume, prompts, preset="medsam2", window="-600,1500")


def test_preset_equals_medsam2s_pipeline_voxel_for_voxel(volume, micro_random, monkeypatch):
    model, checkpoint = micro_random
    result = ours(model, volume)
    expected = medsam2_reference(volume, checkpoint, monkeypatch)
    assert 0 < expected.sum() < expected.size  # a real comparison
    differing = int(np.count_nonzero((result.labelmap == 1) != expected))
    assert differing == 0, f"{differing} voxels differ from MedSAM2's pipeline"
    assert result.slices_processed == {"forward": SLICES - KEY, "backward": KEY + 1}  # every slice, no stop
    assert result.settings["window"][2].startswith("medsam2: clipped to -1350..150")
    assert result.settings["keep_largest_component"] and result.settings["fill_holes_px"] == 8
    assert not result.settings["postprocess"] and not result.settings["auto_stop"]


def test_every_step_of_the_preset_matters_here(volume, micro_random, monkeypatch):
    """Without the hole filling or the largest component MedSAM2's own pipeline gives another
    mask on this volume: the voxel-for-voxel check above covers both steps."""
    _, checkpoint = micro_random
    full = medsam2_reference(volume, checkpoint, monkeypatch)
    assert (full != medsam2_reference(volume, checkpoint, monkeypatch, fill_holes=False)).any()
    raw = medsam2_reference(volume, checkpoint, monkeypatch, largest=False)
    assert ndimage.label(raw, structure=np.ones((3, 3, 3)))[1] > 1 and (full != raw).any()


def test_preset_output_is_one_3d_component_per_object(volume, micro_random):
    model, _ = micro_random
    labelmap = ours(model, volume).labelmap
    for label in np.unique(labelmap[labelmap > 0]):
        assert ndimage.label(labelmap == label, structure=np.ones((3, 3, 3)))[1] == 1
