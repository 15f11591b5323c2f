"""The model registry: valid against its JSON schema, the required entries present, every config
resolvable and building a sam2 video predictor."""

import json

import jsonschema
import pytest

from SegmentWithSAM2Lib.core.model import build_predictor
from SegmentWithSAM2Lib.io.model_zoo import load_registry, model_zoo_dir, resolve_config

SAM2_JULY_2024 = {"tiny": "65b50056e05bcb13694174f51bb6da89c894b57b75ccdf0ba6352c597c5d1125",
                  "small": "95949964d4e548409021d47b22712d5f1abf2564cc0c3c765ba599a24ac7dce3",
                  "base-plus": "d0bb7f236400a49669ffdd1be617959a8b1d1065081789d7bbff88eded3a8071",
                  "large": "7442e4e9b732a508f80e141e7c2913437a3610ee0c77381a66658c3a445df87b"}


def test_registry_matches_its_schema_and_holds_the_required_models():
    registry = json.loads((model_zoo_dir() / "models.json").read_text())
    schema = json.loads((model_zoo_dir() / "models.schema.json").read_text())
    jsonschema.validate(registry, schema)
    ids = {m["id"] for m in registry["models"]}
    required = {f"{family}-hiera-{size}" for family in ("sam2", "sam2.1") for size in SAM2_JULY_2024}
    required |= {"medsam2-latest", "medsam2-2411", "medsam2-ct-lesion", "medsam2-mri-liver-lesion", "medsam2-us-heart"}
    assert required <= ids and len(ids) == len(registry["models"])
    specs = load_registry()
    for size, sha in SAM2_JULY_2024.items():
        assert specs[f"sam2-hiera-{size}"].sha256 == sha
    assert all(specs[f"medsam2-{v}"].image_size == 512 for v in ("latest", "2411", "ct-lesion"))


def test_a_broken_entry_fails_the_schema():
    schema = json.loads((model_zoo_dir() / "models.schema.json").read_text())
    entry = dict(json.loads((model_zoo_dir() / "models.json").read_text())["models"][0], sha256="not-a-hash")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"format_version": 1, "models": [entry]}, schema)


@pytest.mark.parametrize("config", sorted({spec.config for spec in load_registry().values()}))
def test_every_config_builds_a_video_predictor(config):
    predictor = build_predictor(resolve_config(config))
    from sam2.sam2_video_predictor import SAM2VideoPredictor

    assert isinstance(predictor, SAM2VideoPredictor)  # sam2's own, or lite's subclass of it
    sizes = {spec.image_size for spec in load_registry().values() if spec.config == config}
    assert sizes == {predictor.image_size}
    assert predictor.image_size == (512 if "medsam2" in config else 256 if "micro" in config or "lite" in config
                                    else 1024)
    weights_mb = sum(t.numel() * t.element_size() for t in predictor.state_dict().values()) / 1e6
    for spec in load_registry().values():  # the size the model picker shows before a download
        if spec.config == config and not spec.shipped:
            assert abs(spec.approx_size_mb - weights_mb) <= 1, (spec.id, spec.approx_size_mb, weights_mb)
