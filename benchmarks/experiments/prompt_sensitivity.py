"""Does a model listen to its prompts?  Two touching lobes of one intensity on one slice: the mask
decoder's low-res logits for a click on lobe A, a click on lobe B, a negative click alone and a box
on A, each compared with the click on A; and the image features' RMS, which decides whether the
decoder's positional encodings (magnitude ~1) can still tell where a click is.

    python benchmarks/experiments/prompt_sensitivity.py [--model micro | --checkpoint F --config micro_256.yaml]

micro as shipped (2026-11-29): features RMS 123, every prompt within 3e-5 of the click on A.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np
import torch

from SegmentWithSAM2Lib.core.frames import FrameSequence
from SegmentWithSAM2Lib.core.geometry import plan_slices
from SegmentWithSAM2Lib.core.inplane import InPlaneMap
from SegmentWithSAM2Lib.core.intensity import resolve_window
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.training.surgery import image_feature_rms

SHAPE = (80, 128, 128)  # k, j, i: the behaviour tests' twins, lobes centred at i = 46 and 80


def twins_slice(image_size: int, k: int = 40):
    """Slice ``k`` as the engine makes its frame (auto window, in-plane fit), and each lobe's mask there."""
    grid = np.indices(SHAPE, dtype=np.float32)
    lobes = [sum(((g - c) / r) ** 2 for g, c, r in zip(grid, (40, 64, i), (12, 18, 16))) <= 1 for i in (46, 80)]
    rng = np.random.default_rng(202)
    values = np.where(lobes[0] | lobes[1], 170.0, 40.0) + rng.normal(0, 12, SHAPE)
    volume = Volume(values.astype(np.float32), np.diag([0.8, 0.8, 2.0, 1.0]), {"modality": "CT"})
    plan = plan_slices(volume, "k")
    inplane = InPlaneMap.fit(plan.slice_shape, plan.pixel_spacing, image_size)
    frames = FrameSequence(volume.array, plan, resolve_window("auto", volume.array, volume.metadata), inplane)
    masks = [inplane.image_to_frame(torch.from_numpy(plan.view_of(m.astype(np.float32))[k].copy())[None])[0] > 0.5
             for m in (lobes[0], lobes[1] & ~lobes[0])]
    return frames[k][None], masks


@torch.no_grad()
def prompted_frame_features(predictor, frames):
    """What sam2's decoder gets on a prompted frame (no memory): features + no-memory embedding,
    and the high-resolution levels."""
    _, feats, _, sizes = predictor._prepare_backbone_features(predictor.forward_image(frames))
    pix = (feats[-1] + predictor.no_mem_embed).permute(1, 2, 0).view(1, -1, *sizes[-1])
    return pix, [x.permute(1, 2, 0).view(x.size(1), x.size(2), *s) for x, s in zip(feats[:-1], sizes[:-1])]


@torch.no_grad()
def decoder_logits(predictor, features, points, labels):
    """Low-res logits and the high-res mask of sam2's single-mask output for one prompt."""
    prompt = {"point_coords": torch.tensor([points], dtype=torch.float32),
              "point_labels": torch.tensor([labels], dtype=torch.int32)}
    out = predictor._forward_sam_heads(*features[:1], prompt, None, features[1], False)
    return out[3], out[4][0, 0] > 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="micro")
    parser.add_argument("--checkpoint")
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = (load_model(checkpoint=args.checkpoint, config=args.config, device="cpu", precision="fp32")
                 if args.checkpoint else load_model(args.model, device="cpu", precision="fp32"))
    predictor = model.predictor.eval()
    frames, (lobe_a, lobe_b) = twins_slice(model.image_size)
    centre = [torch.nonzero(m).float().mean(0).flip(0).tolist() for m in (lobe_a, lobe_b)]  # x, y
    rows, cols = torch.nonzero(lobe_a, as_tuple=True)
    box = [[float(cols.min()), float(rows.min())], [float(cols.max()), float(rows.max())]]
    prompts = {"click on A": ([centre[0]], [1]), "click on B": ([centre[1]], [1]),
               "negative click on B alone": ([centre[1]], [0]), "box on A": (box, [2, 3]),
               "click on A + negative on B": ([centre[0], centre[1]], [1, 0])}
    features = prompted_frame_features(predictor, frames)  # one image encoding for every prompt
    reference, _ = decoder_logits(predictor, features, *prompts["click on A"])
    print(f"{model.model_id}: image features RMS {image_feature_rms(predictor, frames):.2f}")
    print("| prompt | max abs logit difference from the click on A | mask px in A | mask px in B |")
    print("|---|---|---|---|")
    for name, (points, labels) in prompts.items():
        logits, mask = decoder_logits(predictor, features, points, labels)
        print(f"| {name} | {float((logits - reference).abs().max()):.2e} | {int((mask & lobe_a).sum())} "
              f"| {int((mask & lobe_b).sum())} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
