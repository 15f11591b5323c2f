"""Training on sam2's model code: the loss falls on a clip, the command runs, resumes, and
writes a loadable checkpoint or adapter (the micro config, synthetic volumes)."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from SegmentWithSAM2Lib.cli import main
from SegmentWithSAM2Lib.io.checkpoints import load_adapter
from SegmentWithSAM2Lib.core.model import build_predictor
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.io.model_zoo import resolve_config
from SegmentWithSAM2Lib.training.clips import PromptSampling, sample_clip, simulate_prompt
from SegmentWithSAM2Lib.synthetic import synthetic_volume
from SegmentWithSAM2Lib.training.losses import frame_loss
from SegmentWithSAM2Lib.training.trainer import TrainSettings, clip_loss, lr_at

MICRO = "micro_256.yaml"


def test_synthetic_volumes_have_exact_labels_and_clips_follow_them():
    rng = np.random.default_rng(0)
    volume, labels = synthetic_volume(rng, (16, 48, 48), objects=2)
    assert volume.array.shape == labels.shape and set(np.unique(labels)) == {0, 1, 2}
    clip = sample_clip(volume, labels, 1, 3, 256, rng)
    assert clip.frames.shape == (3, 3, 256, 256) and clip.masks.shape == (3, 256, 256) and clip.masks[0].sum() > 0
    box = simulate_prompt(clip.masks[0].numpy(), np.random.default_rng(1))
    assert set(box) in ({"points", "labels"}, {"mask"})


def test_loss_falls_when_fitting_one_clip():
    torch.manual_seed(0)
    model = build_predictor(resolve_config(MICRO)).train()
    rng = np.random.default_rng(0)
    volume, labels = synthetic_volume(rng, (12, 48, 48), objects=1)
    clip = sample_clip(volume, labels, 1, 2, 256, rng)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    losses = []
    for _ in range(8):
        loss = clip_loss(model, clip)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_the_object_weight_scales_only_the_presence_term():
    torch.manual_seed(0)
    logits, ious = torch.randn(1, 3, 32, 32), torch.rand(1, 3)
    score, absent, present = torch.tensor([[1.5]]), torch.zeros(32, 32), torch.zeros(32, 32)
    present[8:20, 8:20] = 1
    presence = torch.nn.functional.binary_cross_entropy_with_logits(score, torch.zeros(1, 1))
    # an empty target: no mask or IoU term, only the presence term, times its weight
    assert torch.allclose(frame_loss(logits, ious, score, absent, object_weight=10.0), 10 * presence)
    one, ten = (frame_loss(logits, ious, score, present, object_weight=w) for w in (1.0, 10.0))
    presence = torch.nn.functional.binary_cross_entropy_with_logits(score, torch.ones(1, 1))
    assert torch.allclose(ten - one, 9 * presence)


def test_schedule_warms_up_then_decays():
    settings = TrainSettings(steps=100, warmup=10, lr=1e-3)
    assert lr_at(0, settings) == 1e-4 and lr_at(9, settings) == 1e-3
    assert lr_at(55, settings) < 1e-3 and lr_at(100, settings) < 1e-6


def test_train_command_scratch_resumes_and_writes_a_loadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--synthetic", "2", "--clip-length", "2", "--config", MICRO, "--mode", "scratch",
            "--output", str(out), "--device", "cpu", "--precision", "fp32"]
    assert main(base + ["--steps", "2"]) == 0
    assert main(base + ["--steps", "3"]) == 0  # resumes from last.pt: one more step
    log = (out / "train.log").read_text()
    assert re.findall(r"step (\d+)/", log) == ["2", "3"]
    assert len(re.findall(r"validation Dice 0\.\d{3}|validation Dice 1\.000", log)) == 2
    loaded = load_model(checkpoint=out / "model.pt", config=MICRO, device="cpu", precision="fp32")
    assert loaded.image_size == 256


def test_train_command_lora_writes_an_adapter(tmp_path):
    out = tmp_path / "lora"
    assert main(["train", "--synthetic", "1", "--clip-length", "2", "--config", MICRO, "--random-init",
                 "--mode", "lora", "--rank", "2", "--steps", "2", "--output", str(out), "--device", "cpu",
                 "--precision", "bf16"]) == 0  # trains under bf16 autocast
    adapter = load_adapter(Path(out / "adapter.safetensors"))
    # memory attention self + cross (8 per layer x 2) + decoder layers' three attentions (12 x 2)
    # + the decoder's final attention (4) + its 4 output hypernetwork MLPs of 3 layers (12)
    assert adapter.rank == 2 and len(adapter.weights) == 56
    assert "sam_mask_decoder.output_hypernetworks_mlps.0.layers.2" in adapter.weights
    assert any(b.abs().sum() > 0 for _, b in adapter.weights.values())  # the up-projections were trained


def test_pairs_from_a_list_file_and_a_folder(tmp_path):
    import SimpleITK as sitk

    from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error
    from SegmentWithSAM2Lib.io.labelmaps import image_on_grid
    from SegmentWithSAM2Lib.training.data import read_pairs

    volume, labels = synthetic_volume(np.random.default_rng(2), (8, 24, 24), objects=1)
    for folder in ("images", "labels"):
        (tmp_path / folder).mkdir()
    sitk.WriteImage(image_on_grid(volume.array, volume), str(tmp_path / "images" / "case1.nrrd"))
    sitk.WriteImage(image_on_grid(labels, volume), str(tmp_path / "labels" / "case1.nrrd"))
    (tmp_path / "list.txt").write_text("# image, labelmap\nimages/case1.nrrd, labels/case1.nrrd\n")
    for source in (tmp_path, tmp_path / "list.txt"):
        (read_volume, read_labels), = read_pairs(source)
        np.testing.assert_array_equal(read_labels, labels)
        np.testing.assert_allclose(read_volume.ijk_to_ras, volume.ijk_to_ras, atol=1e-6)
    (tmp_path / "bad.txt").write_text("images/case1.nrrd\n")
    with pytest.raises(SegmentWithSAM2Error, match="line 1: expected 'IMAGE LABELMAP'"):
        read_pairs(tmp_path / "bad.txt")


def test_only_the_chosen_labels_are_kept(tmp_path):
    import SimpleITK as sitk

    from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error
    from SegmentWithSAM2Lib.io.labelmaps import image_on_grid
    from SegmentWithSAM2Lib.training.data import parse_labels, read_pairs

    assert parse_labels("37,38,71-74") == {37, 38, 71, 72, 73, 74} and parse_labels(None) is None
    with pytest.raises(SegmentWithSAM2Error, match="label values: expected values and ranges"):
        parse_labels("thalamus")
    volume, labels = synthetic_volume(np.random.default_rng(3), (8, 24, 24), objects=2)
    sitk.WriteImage(image_on_grid(volume.array, volume), str(tmp_path / "image.nrrd"))
    sitk.WriteImage(image_on_grid(labels, volume), str(tmp_path / "labels.nrrd"))
    (tmp_path / "list.txt").write_text("image.nrrd labels.nrrd\n")
    (_, kept), = read_pairs(tmp_path / "list.txt", parse_labels("2"))
    np.testing.assert_array_equal(kept, np.where(labels == 2, 2, 0))


def square_and_neighbour():
    """A 20-px square object and a neighbour touching its right side, on a 64-px frame."""
    mask = np.zeros((64, 64), bool)
    mask[20:40, 20:40] = True
    neighbour = np.zeros_like(mask)
    neighbour[20:40, 40:55] = True
    return mask, neighbour


def test_negative_clicks_fall_on_the_neighbour_or_just_outside():
    mask, neighbour = square_and_neighbour()
    rng = np.random.default_rng(0)
    negatives_seen = 0
    for _ in range(200):
        prompt = simulate_prompt(mask.astype(np.float32), rng, neighbour)
        if "points" not in prompt:
            continue
        for (x, y), label in zip(prompt["points"].astype(int), prompt["labels"]):
            if label == 0:
                negatives_seen += 1
                assert not mask[y, x] and (neighbour[y, x] or abs(x - 30) <= 22 and abs(y - 30) <= 22)
            elif label == 1:
                assert mask[y, x]
    assert negatives_seen > 20


def test_zoom_scales_frames_and_masks_together():
    from SegmentWithSAM2Lib.training.clips import _zoom

    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 24:40, 24:40] = 1
    image = mask.clone().repeat(1, 3, 1, 1)
    zoomed_image, zoomed_mask = _zoom([image, mask], 1.5)
    assert (zoomed_mask >= 0.5).sum() == pytest.approx(16 * 16 * 1.5 ** 2, rel=0.1)
    torch.testing.assert_close(zoomed_image[:, 0], zoomed_mask[:, 0])


def test_shell_structures_are_hollow_and_unknown_shapes_are_refused():
    from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error
    from SegmentWithSAM2Lib.synthetic import parse_shapes

    assert parse_shapes("shell") == ("shell",) and parse_shapes(None) is None
    with pytest.raises(SegmentWithSAM2Error, match=r"unknown synthetic shape 'disc' \(use one of blob, tube, shell, twins\)"):
        parse_shapes("blob,disc")
    _, labels = synthetic_volume(np.random.default_rng(4), (24, 64, 64), objects=1, shapes=("shell",))
    wall = labels == 1
    middle = wall[12]
    filled = ndimage.binary_fill_holes(middle)
    assert middle.sum() > 50 and (filled & ~middle).sum() > 0.2 * filled.sum()  # a ring around a hollow inside


def test_corrective_clicks_come_from_the_error_with_its_sign():
    from SegmentWithSAM2Lib.training.trainer import _error_click

    target = torch.zeros(32, 32)
    target[8:24, 8:24] = 1
    prediction = torch.full((1, 1, 32, 32), -5.0)
    prediction[..., 8:24, 8:16] = 5.0  # the right half is missed
    rng = np.random.default_rng(0)
    for _ in range(20):
        (coords, label) = _error_click(prediction, target, rng)
        x, y = coords[0, 0].int().tolist()
        assert 16 <= x < 24 and 8 <= y < 24 and label.item() == 1
    prediction[..., 8:24, 16:24] = 5.0
    prediction[..., 0:4, 0:4] = 5.0  # a leak in the corner
    coords, label = _error_click(prediction, target, rng)
    assert coords[0, 0].max() < 4 and label.item() == 0
    prediction[..., 0:4, 0:4] = -5.0
    assert _error_click(prediction, target, rng) is None


def test_training_with_corrective_clicks_runs_a_step():
    torch.manual_seed(0)
    model = build_predictor(resolve_config(MICRO)).train()
    rng = np.random.default_rng(0)
    volume, labels = synthetic_volume(rng, (12, 48, 48), objects=1)
    clip = sample_clip(volume, labels, 1, 2, 256, rng)
    clip.prompt = {"points": np.array([[128.0, 128.0]], np.float32), "labels": np.array([1])}

    class Always:  # corrections drawn: 3 rounds
        def random(self):
            return 0.9

        def integers(self, low, high=None):
            return high - 1 if high is not None else int(np.random.default_rng(0).integers(low))

    loss = clip_loss(model, clip, Always())
    loss.backward()
    assert torch.isfinite(loss) and model.sam_mask_decoder.iou_prediction_head.layers[0].weight.grad is not None


def test_twins_are_two_touching_lobes_of_one_intensity():
    for seed, modality in ((0, "CT"), (1, "MR")):
        volume, labels = synthetic_volume(np.random.default_rng(seed), (24, 64, 64), shapes=("twins",),
                                          modality=modality)
        assert set(np.unique(labels)) == {0, 1, 2}
        assert (ndimage.binary_dilation(labels == 1) & (labels == 2)).sum() > 10  # they touch
        lobe_means = [float(np.mean(volume.array[labels == v])) for v in (1, 2)]
        background = float(np.mean(volume.array[labels == 0]))
        # one level; only the MR bias field (it varies across the volume) separates them a little
        assert abs(lobe_means[0] - lobe_means[1]) < 0.2 * abs(lobe_means[0] - background)


def test_a_one_frame_clip_prompted_by_its_own_mask_scores_nothing():
    # sam2 returns such a mask as it is (use_mask_input_as_output_without_sam): there is no prediction to
    # score, and training skips the clip instead of failing on a float loss
    model = build_predictor(resolve_config(MICRO)).train()
    rng = np.random.default_rng(0)
    volume, labels = synthetic_volume(rng, (12, 48, 48), objects=1)
    clip = sample_clip(volume, labels, 1, 1, 256, rng)
    clip.prompt = {"mask": clip.masks[0].numpy()}
    assert clip_loss(model, clip) is None
    rows, cols = np.nonzero(clip.masks[0].numpy())
    clip.prompt = {"points": np.array([[cols.mean(), rows.mean()]], np.float32), "labels": np.array([1])}
    assert clip_loss(model, clip).item() > 0  # a clicked frame is scored


def test_a_leak_correction_feeds_the_leaking_mask_with_negative_clicks_on_the_neighbour():
    mask, neighbour = square_and_neighbour()
    rng = np.random.default_rng(0)
    prompt = simulate_prompt(mask.astype(np.float32), rng, neighbour, leak=1.0)
    np.testing.assert_array_equal(prompt["leaked"], (mask | neighbour).astype(np.float32))
    assert (prompt["labels"] == 0).all() and all(neighbour[y, x] for x, y in prompt["points"].astype(int))
    assert "leaked" not in simulate_prompt(mask.astype(np.float32), rng, None, leak=1.0)  # no neighbour, no leak

    torch.manual_seed(0)
    model = build_predictor(resolve_config(MICRO)).train()
    volume, labels = synthetic_volume(np.random.default_rng(0), (12, 48, 48), shapes=("twins",))
    clip = sample_clip(volume, labels, 1, 1, 256, np.random.default_rng(0), sampling=PromptSampling(leak_corrections=1.0))
    assert "leaked" in clip.prompt and clip.prompt["leaked"].sum() > clip.masks[0].sum()
    clip_loss(model, clip).backward()
    # the earlier mask reached the decoder through the prompt encoder's mask path
    assert model.sam_prompt_encoder.mask_downscaling[0].weight.grad.abs().sum() > 0


def test_validation_on_held_out_files_scores_every_structure(tmp_path, capsys):
    import SimpleITK as sitk

    from SegmentWithSAM2Lib.io.labelmaps import image_on_grid
    from SegmentWithSAM2Lib.training.data import read_pairs
    from SegmentWithSAM2Lib.training.evaluation import box_dice

    volume, labels = synthetic_volume(np.random.default_rng(6), (24, 64, 64), objects=2)
    sitk.WriteImage(image_on_grid(volume.array, volume), str(tmp_path / "image.nrrd"))
    sitk.WriteImage(image_on_grid(labels, volume), str(tmp_path / "labels.nrrd"))
    sitk.WriteImage(image_on_grid(np.zeros_like(labels), volume), str(tmp_path / "empty.nrrd"))
    (tmp_path / "val.txt").write_text("image.nrrd labels.nrrd\n")
    (tmp_path / "none.txt").write_text("image.nrrd empty.nrrd\n")
    out = tmp_path / "run"
    base = ["train", "--synthetic", "1", "--clip-length", "1", "--model", "micro", "--mode", "full",
            "--steps", "1", "--lr", "1e-9", "--device", "cpu", "--precision", "fp32"]
    assert main(base + ["--validation-data", str(tmp_path / "val.txt"), "--output", str(out)]) == 0
    logged = float(re.findall(r"validation Dice (\d\.\d{3})", (out / "train.log").read_text())[-1])
    trained = load_model(checkpoint=out / "model.pt", config=MICRO, device="cpu", precision="fp32")
    (read_volume, read_labels), = read_pairs(tmp_path / "val.txt")
    scores = [box_dice(trained, read_volume, read_labels, label) for label in (1, 2)]  # both structures, not one
    # the two structures score apart, so the mean of both cannot pass for either alone
    assert logged == pytest.approx(np.mean(scores), abs=6e-4) and abs(scores[0] - scores[1]) > 0.1
    capsys.readouterr()
    assert main(base + ["--validation-data", str(tmp_path / "none.txt"), "--output", str(tmp_path / "r2")]) == 1
    assert "none.txt holds no labelled structure" in capsys.readouterr().err


def test_exit_clips_start_near_an_end_of_the_object_and_run_out_of_it():
    """With exits=1 every clip begins on one of the object's last length-1 slices at either end and
    steps outward, so its last frame is past the object; with exits=0 clips mostly run into it."""
    rng = np.random.default_rng(3)
    volume, labels = synthetic_volume(rng, (32, 48, 48), objects=1)
    present = np.nonzero((labels == 1).any(axis=(1, 2)))[0]
    assert 0 < present.min() and present.max() < 28  # room past both ends for a 4-slice clip
    clips = [sample_clip(volume, labels, 1, 4, 64, rng, axis="k", exits=1.0, augment=False) for _ in range(12)]
    clips = [c for c in clips if c is not None]
    assert len(clips) >= 8
    assert all(c.masks[0].any() and not c.masks[-1].any() for c in clips)
    inward = [sample_clip(volume, labels, 1, 4, 64, rng, axis="k", augment=False) for _ in range(12)]
    assert sum(c.masks[-1].any() for c in inward if c is not None) >= 6
