"""Does a negative click remove a leak where propagation made one?  Two lobes of one intensity: A
spans slices 18-62, B (38-62) touches it.  Tracked from one click on A on slice 26, where B is not
there yet, the mask may run into B where it appears; a negative click on B on the slice with the
largest leak is added and the run corrected (the engine feeds that slice's earlier logits with the
click, as sam2's interactive use does).  Prints the leak and A's Dice on that slice before and after.

    python benchmarks/experiments/leak_correction.py [--model micro | --checkpoint F --config micro_256.yaml]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.core.metrics import dice

SHAPE = (80, 128, 128)  # k, j, i


def lobes():
    grid = np.indices(SHAPE, dtype=np.float32)
    inside = [sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1
              for centre, radii in (((40, 64, 46), (22, 18, 16)), ((50, 64, 80), (12, 18, 16)))]
    return inside[0], inside[1] & ~inside[0]


def click(position, positive=True):
    return {"position": [int(v) for v in position], "positive": positive}


def run(model, seed=202):
    a, b = lobes()
    rng = np.random.default_rng(seed)
    values = np.where(a | b, 170.0, 40.0) + rng.normal(0, 12, SHAPE)
    session = VolumeSession(model, Volume(values.astype(np.float32), np.diag([0.8, 0.8, 2.0, 1.0]),
                                          {"modality": "CT"}), axis="k")
    prompts = {"space": "IJK", "objects": [{"label": 1, "points": [click((46, 64, 26))]}]}
    before = session.propagate(prompts, PropagationOptions())
    leak = ((before.labelmap == 1) & b).sum(axis=(1, 2))
    k = int(leak.argmax())
    row = {"3D Dice A before": dice(before.labelmap == 1, a), "leaked slices": int((leak > 0).sum()), "worst slice": k,
           "leak there": int(leak[k]), "B there": int(b[k].sum()), "slice Dice A before": dice(before.labelmap[k] == 1, a[k])}
    if leak[k] == 0:
        return row
    j, i = np.argwhere(b[k]).mean(axis=0).round().astype(int)
    prompts["objects"][0]["points"].append(click((i, j, k), positive=False))
    after = session.propagate(prompts, PropagationOptions(), previous=before)
    row.update({"leak after": int(((after.labelmap[k] == 1) & b[k]).sum()),
                "slice Dice A after": dice(after.labelmap[k] == 1, a[k]), "3D Dice A after": dice(after.labelmap == 1, a)})
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="micro")
    parser.add_argument("--checkpoint")
    parser.add_argument("--config", default="micro_256.yaml")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    model = load_model(checkpoint=args.checkpoint, config=args.config, device="cpu", precision="fp32") \
        if args.checkpoint else load_model(args.model, device="cpu", precision="fp32")
    print("| measure | value |\n|---|---|")
    for name, value in run(model).items():
        print(f"| {name} | {value:.3f} |" if isinstance(value, float) else f"| {name} | {value} |")


if __name__ == "__main__":
    main()
