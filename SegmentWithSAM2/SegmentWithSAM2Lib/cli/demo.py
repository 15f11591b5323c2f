"""``segment-with-sam2 demo``: a sample segmented end to end by a shipped model (lite on
pyradiomics' lung2 CT by default; micro on the phantom)."""

from __future__ import annotations

import sys

from ..options import DEMO_MODELS, SAMPLES
from .model_args import add_model_arguments, choice, model_from_args
from .progress import ProgressBar


def add_parser(commands) -> None:
    parser = commands.add_parser("demo", help="segment a bundled sample end to end")
    parser.add_argument("--output", default="demo-output", help="folder for the labelmap and overlay (demo-output)")
    parser.add_argument("--sample", default=SAMPLES[0], type=choice(SAMPLES, "demo sample"),
                        help="lung2 (default): pyradiomics 3.0.1's lung CT with its tumour, fetched once from the "
                        "package index, segmented by lite; phantom: the synthetic CT, segmented by micro")
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..demo import run_demo
    from ..io.model_zoo import checkpoint_path, model_spec  # a shipped model that is missing is an error, not random

    model_id = args.model or DEMO_MODELS[args.sample]
    random_init = args.random_init
    spec = model_spec(model_id)
    if not (args.checkpoint or random_init or spec.shipped or checkpoint_path(spec).is_file()):
        print(f"No trained weights for {model_id} on this machine, so the demo runs its architecture with "
              "RANDOM WEIGHTS: the mask below is not a real segmentation.", file=sys.stderr)
        random_init = True
    model = model_from_args(args, default=model_id, random_init=random_init)
    print(f"model {model.model_id}, weights {model.weights}", file=sys.stderr)
    if model.model_id in DEMO_MODELS.values():
        print(f"{model.model_id} is one of the project's demonstration models (its card: model_zoo/"
              f"{model.model_id}/README.md): NOT FOR CLINICAL USE.", file=sys.stderr)
    with ProgressBar() as bar:
        result = run_demo(args.output, model, on_progress=bar.slices, sample=args.sample)
    print(f"wrote {result.labelmap} and {result.overlay}; weights: {model.weights}; "
          f"Dice against the sample's known label: {result.dice:.3f}; {result.seconds:.1f} s, "
          f"slices {result.slices_processed}")
    return 0
