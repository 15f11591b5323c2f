"""Training with a frozen image encoder reuses each frame's trunk output (training.feature_memo):
the same steps give the same weights as without the memo, with fewer encoder calls; frozen batch
norms keep their statistics in training mode."""

import numpy as np
import torch

from SegmentWithSAM2Lib.core.model import build_predictor
from SegmentWithSAM2Lib.io.model_zoo import resolve_config
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.synthetic import synthetic_volume
from SegmentWithSAM2Lib.training.clips import sample_clip
from SegmentWithSAM2Lib.training.surgery import freeze
from SegmentWithSAM2Lib.training.trainer import TrainSettings, _train_mode, train


def trained(tmp_path, memo_frames):
    model = load_model("micro", device="cpu", precision="fp32").predictor
    freeze(model, ["image_encoder"])
    volume, labels = synthetic_volume(np.random.default_rng(3), (12, 48, 48), objects=1, shapes=("blob",))
    calls, logs = [], []
    model.image_encoder.trunk.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    torch.manual_seed(0)
    train(model, lambda g: sample_clip(volume, labels, 1, 2, 256, g, axis="k", window="auto", augment=False),
          TrainSettings(steps=6, lr=1e-3, seed=1, memo_frames=memo_frames), tmp_path / f"run{memo_frames}",
          log=logs.append)
    return model.state_dict(), sum(calls), logs


def test_the_memo_changes_nothing_but_the_encoder_calls(tmp_path):
    plain, plain_calls, _ = trained(tmp_path, 0)
    memo, _, logs = trained(tmp_path, 100)
    assert plain.keys() == memo.keys()
    assert all(torch.equal(plain[k], memo[k]) for k in plain)  # bit for bit the same training
    assert plain_calls == 12  # 6 clips of 2 frames, each encoded
    encoded, reused = (int(w) for w in logs[-1].split() if w.isdigit())
    assert logs[-1] == f"image features: {encoded} frames encoded, {reused} reused"
    assert encoded + reused == 12 and reused > 0  # a frame seen again is not encoded again


def test_frozen_batch_norms_keep_their_statistics_in_training_mode():
    lite = build_predictor(resolve_config("lite_256.yaml"))
    norms = [m for m in lite.image_encoder.trunk.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    _train_mode(lite)
    assert norms and all(m.training for m in norms)  # trainable: batch statistics, as usual
    freeze(lite, ["image_encoder", "no_mem_embed"])
    _train_mode(lite)
    assert not any(m.training for m in norms) and lite.memory_attention.training
    assert not lite.no_mem_embed.requires_grad and lite.obj_ptr_proj.layers[0].weight.requires_grad
