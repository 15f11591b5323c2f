"""A LoRA fine-tune of the shipped micro weights: the adapter saved by training reloads (through
``load_model(..., adapters=...)``) to exactly the outputs of the model it was trained in."""

from pathlib import Path

import numpy as np
import torch

from SegmentWithSAM2Lib.core.adapters import new_adapter
from SegmentWithSAM2Lib.io.checkpoints import save_adapter
from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession
from SegmentWithSAM2Lib.core.model import LoadedModel
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.training.clips import sample_clip
from SegmentWithSAM2Lib.core.adapters import attach_trainable as _attach, detach_trained as _detach
from SegmentWithSAM2Lib.training.fine_tune import LORA_TARGETS
from SegmentWithSAM2Lib.synthetic import synthetic_volume
from SegmentWithSAM2Lib.training.trainer import TrainSettings, train
from SegmentWithSAM2Lib.core.metrics import middle_slice_box


def test_a_trained_adapter_reloads_to_the_same_outputs(tmp_path):
    base = load_model("micro", device="cpu", precision="fp32")
    rng = np.random.default_rng(7)
    volume, labels = synthetic_volume(rng, (16, 64, 64), objects=1, shapes=("shell",))
    adapter = new_adapter(base.predictor, LORA_TARGETS, rank=4, base_model="micro", base_sha256=base.weights)
    parameters = _attach(base.predictor, adapter)
    train(base.predictor, lambda g: sample_clip(volume, labels, 1, 3, 256, g), TrainSettings(steps=3, lr=1e-2),
          tmp_path / "run", log=lambda _: None, parameters=parameters)
    path = save_adapter(_detach(base.predictor, adapter), Path(tmp_path) / "shell")
    assert any(b.abs().sum() > 0 for _, b in adapter.weights.values())

    trained = LoadedModel(base.predictor, "micro+trained", base.config, base.device, "fp32", base.weights)
    reloaded = load_model("micro", device="cpu", precision="fp32", adapters=[path.with_suffix("")])  # NAME alone
    plain = load_model("micro", device="cpu", precision="fp32")
    prompts = middle_slice_box(labels, 1)
    outputs = {}
    for name, model in (("trained", trained), ("reloaded", reloaded), ("plain", plain)):
        result = VolumeSession(model, volume, axis="k").propagate(prompts, PropagationOptions(postprocess=None))
        outputs[name] = (result.labelmap, torch.cat([v for _, v in sorted(result.low_res.items())]))
    np.testing.assert_array_equal(outputs["reloaded"][0], outputs["trained"][0])
    torch.testing.assert_close(outputs["reloaded"][1], outputs["trained"][1], rtol=0, atol=1e-5)
    # the adapter does change the model: by far more than the reload tolerance above
    assert (outputs["plain"][1] - outputs["trained"][1]).abs().max() > 1e-3
