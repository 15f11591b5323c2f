"""LoRA adapters on a real sam2 model: no-op when zero, a change when not, merging equal to
applying, the base checked by hash, our format and PEFT's layout reloading to the same outputs."""

import json

import pytest
import torch
from safetensors.torch import save_file

from SegmentWithSAM2Lib.core.adapters import new_adapter
from SegmentWithSAM2Lib.io.checkpoints import load_adapter, save_adapter
from SegmentWithSAM2Lib.io.hashing import sha256_of
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error

TARGETS = ["image_encoder.trunk.blocks.*.attn.qkv", "image_encoder.trunk.blocks.*.attn.proj"]
IMAGE = torch.randn(1, 3, 512, 512, generator=torch.Generator().manual_seed(0))


def features(loaded):
    with torch.inference_mode():
        return loaded.predictor.forward_image(IMAGE)["vision_features"]


def load(checkpoint, *adapters, merge=False):
    return load_model(checkpoint=checkpoint, config="medsam2_512.yaml", device="cpu", precision="fp32",
                      adapters=adapters, merge_adapters=merge)


@pytest.fixture(scope="module")
def base(random_checkpoint):
    return features(load(random_checkpoint))


def adapter_file(tmp_path, model, checkpoint, trained=True, base_sha=None, name="lesion"):
    adapter = new_adapter(model.predictor, TARGETS, rank=4, alpha=8, base_model="medsam2-latest",
                          base_sha256=base_sha or sha256_of(checkpoint), training_data="synthetic test data")
    if trained:  # as if training had moved the up-projections away from zero
        generator = torch.Generator().manual_seed(1)
        adapter.weights = {k: (a, torch.randn(b.shape, generator=generator) * 0.05) for k, (a, b) in adapter.weights.items()}
    return save_adapter(adapter, tmp_path / name)


def test_zero_up_projection_changes_nothing(tmp_path, medsam2_random, random_checkpoint, base):
    path = adapter_file(tmp_path, medsam2_random, random_checkpoint, trained=False)
    assert torch.equal(features(load(random_checkpoint, path)), base)


def test_trained_adapter_changes_outputs_and_merging_matches(tmp_path, medsam2_random, random_checkpoint, base):
    path = adapter_file(tmp_path, medsam2_random, random_checkpoint)
    applied = features(load(random_checkpoint, path))
    merged = features(load(random_checkpoint, path, merge=True))
    assert (applied - base).abs().max() > 1e-3
    # merging sums W + BA in another order than applying: fp32 rounding of features of magnitude ~5
    torch.testing.assert_close(merged, applied, atol=1e-5, rtol=1e-5)
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["rank"] == 4 and manifest["target_modules"] == TARGETS and manifest["format_version"] == 1


def test_adapter_for_another_base_is_refused_with_both_hashes(tmp_path, medsam2_random, random_checkpoint):
    path = adapter_file(tmp_path, medsam2_random, random_checkpoint, base_sha="f" * 64)
    with pytest.raises(SegmentWithSAM2Error) as error:
        load(random_checkpoint, path)
    assert "f" * 64 in str(error.value) and sha256_of(random_checkpoint) in str(error.value)


def test_peft_layout_imports_to_the_same_outputs(tmp_path, medsam2_random, random_checkpoint):
    path = adapter_file(tmp_path, medsam2_random, random_checkpoint)
    ours = load_adapter(path)
    peft = tmp_path / "peft"
    peft.mkdir()
    save_file({f"base_model.model.{name}.lora_{part}.weight": tensor.contiguous()
               for name, (a, b) in ours.weights.items() for part, tensor in (("A", a), ("B", b))},
              str(peft / "adapter_model.safetensors"))
    (peft / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8,
                                                          "lora_dropout": 0.0, "target_modules": ["qkv", "proj"]}))
    torch.testing.assert_close(features(load(random_checkpoint, peft)), features(load(random_checkpoint, path)),
                               atol=0, rtol=0)
