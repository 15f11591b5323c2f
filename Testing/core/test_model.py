"""Model building and checkpoints: weights_only loading, strict keys, helpful mismatches,
explicit random weights, device and precision choice."""

import shutil

import pytest
import torch

from SegmentWithSAM2Lib.core import model as model_module
from SegmentWithSAM2Lib.core.weights import matching_configs
from SegmentWithSAM2Lib.io.model_zoo import registry_configs
from SegmentWithSAM2Lib.io.checkpoints import read_state_dict
from SegmentWithSAM2Lib.io.hashing import sha256_of
from SegmentWithSAM2Lib.core.model import pick_device, pick_precision
from SegmentWithSAM2Lib.errors import RandomWeightsWarning
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.io.model_zoo import CACHE_ENV, load_registry, resolve_config
from SegmentWithSAM2Lib.errors import CheckpointError, SegmentWithSAM2Error


class NotAWeight:
    """Pickling this needs arbitrary code, which weights_only must refuse."""


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_checkpoint_layouts_load_to_the_same_weights(tmp_path, medsam2_random, random_checkpoint):
    bare = tmp_path / "bare.pt"
    torch.save(medsam2_random.predictor.state_dict(), bare)
    for path in (random_checkpoint, bare):
        loaded = load_model(checkpoint=path, config="medsam2_512.yaml", device="cpu", precision="fp32")
        assert same_weights(loaded.predictor, medsam2_random.predictor)
        assert loaded.weights == sha256_of(path) and loaded.model_id == "custom:medsam2_512.yaml"


def test_registry_model_loads_from_the_cache(tmp_path, monkeypatch, random_checkpoint, medsam2_random):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    with pytest.raises(SegmentWithSAM2Error, match="not downloaded.*MedSAM2_latest.pt"):
        load_model("medsam2-latest", device="cpu")
    shutil.copy(random_checkpoint, tmp_path / "MedSAM2_latest.pt")
    loaded = load_model("medsam2-latest", device="cpu", precision="fp32")
    assert loaded.model_id == "medsam2-latest" and loaded.image_size == 512
    assert same_weights(loaded.predictor, medsam2_random.predictor)


def test_unsafe_corrupt_and_missing_checkpoints_are_refused(tmp_path, medsam2_random):
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"model": medsam2_random.predictor.state_dict(), "extra": NotAWeight()}, unsafe)
    with pytest.raises(CheckpointError, match="arbitrary Python code"):
        read_state_dict(unsafe)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x02not really a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        read_state_dict(corrupt)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        read_state_dict(tmp_path / "absent.pt")
    empty = tmp_path / "empty.pt"
    torch.save({"optimizer": {}}, empty)
    with pytest.raises(CheckpointError, match="holds no state dict"):
        read_state_dict(empty)


def test_mismatch_names_keys_and_suggests_the_config(tmp_path, medsam2_random):
    state = medsam2_random.predictor.state_dict()
    assert matching_configs(state, registry_configs()) == ["configs/sam2.1/sam2.1_hiera_t.yaml", "medsam2_512.yaml"]
    path = tmp_path / "tiny21.pt"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError) as error:
        load_model(checkpoint=path, config="configs/sam2/sam2_hiera_t.yaml", device="cpu")
    message = str(error.value)
    assert "unexpected keys" in message and "no_obj_embed_spatial" in message
    assert "sam2.1_hiera_t.yaml / medsam2_512.yaml" in message


def test_every_registry_config_resolves_with_a_distinct_architecture():
    from SegmentWithSAM2Lib.core.weights import fingerprint_of_config

    configs = {spec.config for spec in load_registry().values()}
    prints = {name: fingerprint_of_config(resolve_config(name)) for name in configs}
    assert len(configs) == 11 and len(set(prints.values())) == 10  # MedSAM2 shares SAM2.1-tiny's weights
    assert prints["lite_256.yaml"] is None  # not a Hiera: no fingerprint, never a suggestion


def test_random_weights_only_on_request_and_seeded():
    with pytest.warns(RandomWeightsWarning, match="RANDOM WEIGHTS"):
        a = load_model("medsam2-latest", random_init=True, seed=1, device="cpu")
    with pytest.warns(RandomWeightsWarning):
        b = load_model("medsam2-latest", random_init=True, seed=1, device="cpu")
    with pytest.warns(RandomWeightsWarning):
        c = load_model("medsam2-latest", random_init=True, seed=2, device="cpu")
    assert same_weights(a.predictor, b.predictor) and not same_weights(a.predictor, c.predictor)
    assert a.weights == "random (seed 1)"
    with pytest.raises(SegmentWithSAM2Error, match="exclude each other"):
        load_model("medsam2-latest", random_init=True, checkpoint="x.pt")


def test_unknown_model_device_and_precision_are_clear_errors():
    with pytest.raises(SegmentWithSAM2Error, match="unknown model 'nope'.*medsam2-latest"):
        load_model("nope")
    with pytest.raises(SegmentWithSAM2Error, match="unknown device"):
        pick_device("tpu")
    with pytest.raises(SegmentWithSAM2Error, match="unknown precision"):
        pick_precision("int8", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(SegmentWithSAM2Error, match="no CUDA GPU"):
            pick_device("cuda")
        assert pick_device("auto").type in ("cpu", "mps")


def test_auto_precision_is_bf16_only_with_native_support():
    expected = "bf16" if model_module._native_cpu_bf16() else "fp32"
    assert pick_precision("auto", torch.device("cpu")) == expected
    assert pick_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(SegmentWithSAM2Error, match="fp16 does not run on the CPU.*use bf16 or fp32"):
        pick_precision("fp16", torch.device("cpu"))  # was a raw RuntimeError from autocast after the load


def test_safetensors_and_training_output_checkpoints_load(tmp_path, medsam2_random):
    from safetensors.torch import save_file

    state = medsam2_random.predictor.state_dict()
    flat = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(flat))
    training = tmp_path / "checkpoint_epoch3.pt"  # as a training run saves it: model plus optimizer state
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": []}, "epoch": 3}, training)
    for path in (flat, training):
        loaded = load_model(checkpoint=path, config="medsam2_512.yaml", device="cpu", precision="fp32")
        assert same_weights(loaded.predictor, medsam2_random.predictor), path.name
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(flat.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        read_state_dict(broken)


def test_a_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "was_run"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))  # would create the marker file when unpickled

    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match="arbitrary Python code"):
        read_state_dict(path)
    assert not marker.exists()
