"""Rescaling image features: the new RMS is the one asked for, sam2's linear consumers of the
features (decoder high-resolution projections, memory encoder input) give what they gave before,
and the train command refuses it outside full mode."""

import pytest
import torch

from SegmentWithSAM2Lib.cli import main
from SegmentWithSAM2Lib.core.model import build_predictor
from SegmentWithSAM2Lib.core.registry import resolve_config
from SegmentWithSAM2Lib.training.rescale import image_feature_rms, rescale_image_features


@torch.no_grad()
def test_rescaled_features_have_the_asked_rms_and_linear_consumers_are_unchanged():
    torch.manual_seed(0)
    model = build_predictor(resolve_config("micro_256.yaml")).eval()
    frames = torch.randn(2, 3, 256, 256)
    before = model.forward_image(frames)  # conv_s0/conv_s1 already applied to levels 0 and 1
    memory_in = model.memory_encoder.pix_feat_proj(before["vision_features"])
    old_rms = image_feature_rms(model, frames)

    factor = rescale_image_features(model, frames, target_rms=old_rms / 40)

    after = model.forward_image(frames)
    assert factor == pytest.approx(1 / 40, rel=1e-5)
    assert image_feature_rms(model, frames) == pytest.approx(old_rms / 40, rel=1e-4)
    torch.testing.assert_close(after["vision_features"], before["vision_features"] / 40, rtol=1e-4, atol=1e-6)
    for level in (0, 1):
        torch.testing.assert_close(after["backbone_fpn"][level], before["backbone_fpn"][level], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model.memory_encoder.pix_feat_proj(after["vision_features"]), memory_in,
                               rtol=1e-4, atol=1e-5)


def test_rescaling_is_refused_outside_full_mode(tmp_path, capsys):
    args = ["train", "--synthetic", "1", "--config", "micro_256.yaml", "--mode", "scratch", "--steps", "1",
            "--rescale-image-features", "1.0", "--output", str(tmp_path / "run"), "--device", "cpu"]
    assert main(args) == 1
    assert "use it with --mode full" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def _fine_tune(tmp_path, *options):
    out = tmp_path / "run"
    args = ["train", "--synthetic", "1", "--model", "micro", "--mode", "full", "--steps", "1", "--clip-length", "2",
            "--output", str(out), "--device", "cpu", "--precision", "fp32", *options]
    assert main(args) == 0
    return torch.load(out / "model.pt", weights_only=True)["model"]


def _part(state, prefix):
    return {k: v for k, v in state.items() if k.startswith(prefix + ".")}


def test_frozen_modules_keep_their_weights_and_reinit_ones_start_fresh(tmp_path):
    from SegmentWithSAM2Lib.core.checkpoint import read_state_dict
    from SegmentWithSAM2Lib.core.registry import checkpoint_path, model_spec

    shipped = read_state_dict(checkpoint_path(model_spec("micro")))
    state = _fine_tune(tmp_path, "--reinit", "sam_mask_decoder.transformer", "--seed", "7",
                       "--freeze", "image_encoder,sam_mask_decoder.transformer")
    for name, value in _part(state, "image_encoder").items():
        torch.testing.assert_close(value, shipped[name], rtol=0, atol=0)
    fresh = build_predictor(resolve_config("micro_256.yaml"), 7).state_dict()
    transformer = _part(state, "sam_mask_decoder.transformer")
    assert transformer and all(torch.equal(v, fresh[k]) for k, v in transformer.items())
    assert not all(torch.equal(v, shipped[k]) for k, v in transformer.items())
    trained = _part(state, "memory_attention")  # not frozen: one step moved it
    assert any(not torch.equal(v, shipped[k]) for k, v in trained.items())


@pytest.mark.parametrize("options, message", [
    (["--mode", "full", "--freeze", "image_encoder.nothing"], "--freeze: no module image_encoder.nothing; the model has"),
    (["--mode", "lora", "--freeze", "image_encoder"], "lora already freezes the base"),
    (["--mode", "scratch", "--reinit", "sam_mask_decoder"], "--reinit replaces part of the loaded weights"),
])
def test_freeze_and_reinit_refuse_what_they_cannot_do(tmp_path, capsys, options, message):
    args = ["train", "--synthetic", "1", "--model", "micro", "--steps", "1", "--output", str(tmp_path / "run"),
            "--device", "cpu", *options]
    assert main(args) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
