"""``segment-with-sam2 evaluate``: Dice, HD95 and NSD against known labels, with a baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import SegmentWithSAM2Error
from ..options import BASELINES, PROTOCOLS
from .model_args import add_model_arguments, choice, model_from_args
from .train import DATA_HELP, SHAPES_HELP


def add_parser(commands) -> None:
    parser = commands.add_parser("evaluate", help="Dice, HD95 and NSD against known labels, with a baseline")
    parser.add_argument("--data", help=DATA_HELP)
    parser.add_argument("--synthetic-shapes", help=SHAPES_HELP)
    parser.add_argument("--synthetic", type=int, default=0, help="also evaluate on N held-out synthetic volumes")
    parser.add_argument("--protocol", default="box", type=choice(PROTOCOLS, "protocol"),
                        help="box or point on the middle slice, or the box then corrective clicks")
    parser.add_argument("--rounds", type=int, default=3, help="corrector rounds (one click each)")
    parser.add_argument("--labels", help="evaluate only these label values, e.g. 1,3-5")
    parser.add_argument("--baseline", type=baselines, default="region-growing",
                        help="run beside the model from the same prompts (comma-separated): region-growing "
                        "(classical), litemedsam-slices (MedSAM's slice-by-slice recipe with LiteMedSAM; box "
                        "protocol), or none (faster)")
    parser.add_argument("--report", help="write the table as JSON (and Markdown beside it)")
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def baselines(text: str) -> str:
    """'region-growing,litemedsam-slices' checked part by part (argparse's type)."""
    pick = choice(BASELINES, "baseline")
    return ",".join(pick(part.strip()) for part in text.split(","))


def run(args) -> int:
    from ..machine import describe_machine, one_line
    from ..training.evaluation import evaluate, markdown

    if args.report:
        from ..io.labelmaps import check_output_folder

        check_output_folder(Path(args.report))
    cases = evaluation_cases(args)
    model = model_from_args(args)
    rows = evaluate(model, cases, args.protocol, args.rounds, baseline=args.baseline)
    machine = describe_machine()
    table = markdown(rows, model, args.protocol) + f"\n\nMachine: {one_line(machine)}"
    print(table)
    if args.report:
        report = Path(args.report)
        from ..io.atomic import write_text_atomic

        write_text_atomic(report, json.dumps({"model": model.model_id, "weights": model.weights,
                                              "protocol": args.protocol, "machine": machine, "rows": rows}, indent=2))
        write_text_atomic(report.with_suffix(".md"), table + "\n")
    return 0


def evaluation_cases(args) -> list:
    from ..synthetic import parse_shapes, synthetic_volume
    from ..training.data import HELD_OUT_SEED_OFFSET, case_names, parse_labels, read_pairs

    cases = []
    if args.data:
        pairs = read_pairs(args.data, parse_labels(args.labels))
        cases = [(name, volume, labels) for name, (volume, labels) in zip(case_names(args.data), pairs)]
    held_out = np.random.default_rng(args.seed + HELD_OUT_SEED_OFFSET)  # not the training seeds
    shapes = parse_shapes(args.synthetic_shapes)
    cases += [(f"synthetic{n}", *synthetic_volume(held_out, objects=1, modality=("CT", "MR")[n % 2], shapes=shapes))
              for n in range(args.synthetic)]
    if not cases:
        raise SegmentWithSAM2Error("nothing to evaluate: give --data and/or --synthetic N")
    if not any((labels > 0).any() for _, _, labels in cases):
        raise SegmentWithSAM2Error(f"no labelled structure to evaluate in {args.data}"
                                   + (f" with --labels {args.labels}" if args.labels else "")
                                   + "; give label values that the labelmaps hold")
    return cases
