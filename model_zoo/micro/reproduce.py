"""Replay a stage of micro's recipe (recipe.json beside this file), from the repository root:

    python model_zoo/micro/reproduce.py --stage 0 [--runs runs] [--steps N]

Stage N starts from runs/micro-(its "from" stage)/model.pt and writes runs/micro-N/model.pt;
stage 5's result is model_zoo/micro/micro.pt (README.md beside this file).
"""

import argparse
import sys
from pathlib import Path

from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.training.recipe import read_recipe, run_stage


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--runs", default="runs", help="folder of the stages' outputs (runs)")
    parser.add_argument("--steps", type=int, help="fewer steps than the recipe's, to check a stage runs")
    args = parser.parse_args(argv)
    recipe = read_recipe(Path(__file__).with_name("recipe.json"))

    def loader(checkpoint, seed):
        return load_model(None, config=recipe["config"], checkpoint=checkpoint, random_init=checkpoint is None,
                          seed=seed, device=recipe["device"], precision=recipe["precision"])

    print(run_stage(recipe, args.stage, Path(args.runs), loader, steps=args.steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
