"""``segment-with-sam2 evaluate``: the evaluation table, printed and optionally written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import SegmentWithSAM2Error
from ..machine import describe_machine, one_line
from .datasets import case_names, parse_labels, read_pairs
from .evaluation import evaluate
from .synthetic import parse_shapes, synthetic_volume


def run_evaluation(args) -> int:
    from ..cli import model_from_args

    cases = []
    if args.data:
        pairs = read_pairs(args.data, parse_labels(args.labels))
        cases = [(name, volume, labels) for name, (volume, labels) in zip(case_names(args.data), pairs)]
    held_out = np.random.default_rng(args.seed + 20_000)  # not the training seeds
    shapes = parse_shapes(args.synthetic_shapes)
    cases += [(f"synthetic{n}", *synthetic_volume(held_out, objects=1, modality=("CT", "MR")[n % 2], shapes=shapes))
              for n in range(args.synthetic)]
    if not cases:
        raise SegmentWithSAM2Error("nothing to evaluate: give --data and/or --synthetic N")
    model = model_from_args(args)
    rows = evaluate(model, cases, args.protocol, args.rounds, baseline=args.baseline != "none")
    machine = describe_machine()
    table = markdown(rows, model, args.protocol) + f"\n\nMachine: {one_line(machine)}"
    print(table)
    if args.report:
        report = Path(args.report)
        report.write_text(json.dumps({"model": model.model_id, "weights": model.weights, "protocol": args.protocol,
                                      "machine": machine, "rows": rows}, indent=2))
        report.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
    return 0


def markdown(rows, model, protocol) -> str:
    rounds = "dice_rounds" in rows[0]
    extra = (" Dice per round | clicks |", "---|---|") if rounds else ("", "")
    lines = [f"Model {model.model_id} (weights {model.weights[:16]}), protocol {protocol}", "",
             f"| case | method | Dice | HD95 (mm) | NSD@2mm |{extra[0]}", f"|---|---|---|---|---|{extra[1]}"]
    lines += [_row(r["case"], r, rounds) for r in rows]
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        mean = {k: float(np.mean([r[k] for r in mine])) for k in ("dice", "hd95", "nsd", "clicks") if k in mine[0]}
        if rounds:
            mean["dice_rounds"] = np.mean([r["dice_rounds"] for r in mine], axis=0).tolist()
        lines.append(_row("mean", {"method": method, **mean}, rounds))
    return "\n".join(lines)


def _row(case, r, rounds) -> str:
    line = f"| {case} | {r['method']} | {r['dice']:.3f} | {_mm(r['hd95'])} | {r['nsd']:.3f} |"
    if rounds:
        line += f" {' -> '.join(f'{d:.3f}' for d in r['dice_rounds'])} | {r['clicks']:g} |"
    return line


def _mm(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.1f}"
