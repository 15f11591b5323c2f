"""Model surgery and the recipe that drives it: rescaled image features have the RMS asked for
and sam2's linear consumers of them give what they gave before; a recipe stage rescales, restarts
and freezes what it names; micro's shipped recipe is complete; `train` refuses what it cannot do
and no longer offers the surgery flags."""

import contextlib
import json
import re
import shutil

import pytest
import torch

from SegmentWithSAM2Lib.cli import main
from SegmentWithSAM2Lib.core.model import build_predictor
from SegmentWithSAM2Lib.io.model_zoo import resolve_config
from SegmentWithSAM2Lib.io.checkpoints import read_state_dict
from SegmentWithSAM2Lib.io.model_zoo import checkpoint_path, model_spec, model_zoo_dir
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.training.recipe import read_recipe, run_stage, stage_config, stage_of
from SegmentWithSAM2Lib.training.surgery import image_feature_rms, rescale_image_features


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


def _part(state, prefix):
    return {k: v for k, v in state.items() if k.startswith(prefix + ".")}


def _loader(checkpoint, seed):
    return load_model(None, config="micro_256.yaml", checkpoint=checkpoint, random_init=checkpoint is None,
                      seed=seed, device="cpu", precision="fp32")


def test_a_recipe_stage_rescales_restarts_and_freezes_what_it_names(tmp_path):
    shipped_path = checkpoint_path(model_spec("micro"))
    (tmp_path / "runs" / "micro-0").mkdir(parents=True)
    shutil.copy(shipped_path, tmp_path / "runs" / "micro-0" / "model.pt")
    stage = {"stage": "x", "from": "0", "mode": "full", "synthetic": 1, "shapes": "blob", "steps": 1,
             "clip_length": 2, "lr": 1e-4, "seed": 7, "leak_corrections": 0,
             "surgery": {"rescale_image_features": 0.5, "reinit": ["sam_mask_decoder.transformer"]},
             "freeze": ["image_encoder", "sam_mask_decoder.transformer"]}
    recipe = {"model": "micro", "folder": tmp_path, "data": {}, "stages": [stage]}
    lines = []
    result = run_stage(recipe, "x", tmp_path / "runs", _loader, log=lines.append)
    shipped, state = read_state_dict(shipped_path), torch.load(result, weights_only=True)["model"]
    factor = float(re.search(r"scaled by (\S+) to RMS 0.5", lines[0]).group(1))
    assert 0.3 < factor < 0.7  # shipped micro's features have an RMS near 1 (its stage 1)
    for name, value in _part(state, "image_encoder.trunk").items():
        assert torch.equal(value, shipped[name])  # frozen
    weight = "image_encoder.neck.convs.0.conv.weight"
    torch.testing.assert_close(state[weight], shipped[weight] * factor, rtol=1e-3, atol=0)
    fresh = build_predictor(resolve_config("micro_256.yaml"), 7).state_dict()
    transformer = _part(state, "sam_mask_decoder.transformer")
    assert transformer and all(torch.equal(v, fresh[k]) for k, v in transformer.items())
    assert any(not torch.equal(v, shipped[k]) for k, v in _part(state, "memory_attention").items())
    manifest = json.loads((result.parent / "training.json").read_text())
    assert manifest["settings"]["sampling"] == {"leak_corrections": 0.0} and manifest["settings"]["seed"] == 7


def test_micro_recipe_names_every_stage_and_its_data():
    recipe = read_recipe(model_zoo_dir() / "micro" / "recipe.json")
    names = [str(s["stage"]) for s in recipe["stages"]]
    assert names == ["0", "1", "2", "3", "4", "5"]
    for stage in recipe["stages"]:
        config = stage_config(stage)
        assert config.steps > 0 and config.mode in ("scratch", "full")
        assert stage["from"] is None or stage_of(recipe, stage["from"])
        for name in stage.get("data", []):
            assert (recipe["folder"] / recipe["data"][name]["list"]).is_file()
    assert [stage_config(s).sampling.leak_corrections for s in recipe["stages"]] == [0, 0, 0, 0, 0.3, 0.5]
    assert "rescale_image_features" in stage_of(recipe, "1")["surgery"]


def test_frozen_modules_keep_their_weights(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--synthetic", "1", "--model", "micro", "--mode", "full", "--steps", "1", "--clip-length", "2",
            "--output", str(out), "--device", "cpu", "--precision", "fp32", "--freeze", "image_encoder"]
    assert main(args) == 0
    shipped, state = read_state_dict(checkpoint_path(model_spec("micro"))), read_state_dict(out / "model.pt")
    assert all(torch.equal(v, shipped[k]) for k, v in _part(state, "image_encoder").items())
    assert any(not torch.equal(v, shipped[k]) for k, v in _part(state, "memory_attention").items())


@pytest.mark.parametrize("options, message", [
    (["--mode", "full", "--freeze", "image_encoder.nothing"], "no module image_encoder.nothing; the model has"),
    (["--mode", "lora", "--freeze", "image_encoder"], "lora already freezes the base"),
    (["--mode", "ful"], "unknown training mode 'ful'; did you mean 'full'?"),
])
def test_train_refuses_what_it_cannot_do_before_writing(tmp_path, capsys, options, message):
    args = ["train", "--synthetic", "1", "--model", "micro", "--steps", "1", "--output", str(tmp_path / "run"),
            "--device", "cpu", *options]
    with pytest.raises(SystemExit) if "ful'" in message else contextlib.nullcontext():
        assert main(args) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag", ["--reinit", "--rescale-image-features", "--leak-corrections"])
def test_surgery_flags_left_the_train_command(tmp_path, capsys, flag):
    with pytest.raises(SystemExit):
        main(["train", "--synthetic", "1", "--model", "micro", flag, "1", "--output", str(tmp_path / "run")])
    assert f"unrecognized arguments: {flag}" in capsys.readouterr().err

