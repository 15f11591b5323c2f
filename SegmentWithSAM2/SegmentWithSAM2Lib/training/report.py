"""``segment-with-sam2 evaluate``: the evaluation table, printed and optionally written."""

from __future__ import annotations

import json
import math
import platform
from datetime import date
from pathlib import Path

import numpy as np

from ..errors import SegmentWithSAM2Error
from .datasets import read_pairs
from .evaluation import evaluate
from .synthetic import synthetic_volume


def run_evaluation(args) -> int:
    from ..cli import model_from_args

    cases = [(Path(str(i)).name, v, l) for i, (v, l) in enumerate(read_pairs(args.data))] if args.data else []
    held_out = np.random.default_rng(args.seed + 20_000)  # not the training seeds
    cases += [(f"synthetic{n}", *synthetic_volume(held_out, objects=1, modality=("CT", "MR")[n % 2]))
              for n in range(args.synthetic)]
    if not cases:
        raise SegmentWithSAM2Error("nothing to evaluate: give --data and/or --synthetic N")
    model = model_from_args(args)
    rows = evaluate(model, cases, args.protocol)
    table = markdown(rows, model, args.protocol)
    print(table)
    if args.report:
        report = Path(args.report)
        report.write_text(json.dumps({"model": model.model_id, "weights": model.weights, "protocol": args.protocol,
                                      "machine": platform.processor() or platform.machine(),
                                      "date": date.today().isoformat(), "rows": rows}, indent=2))
        report.with_suffix(".md").write_text(table + "\n")
    return 0


def markdown(rows, model, protocol) -> str:
    lines = [f"Model {model.model_id} (weights {model.weights[:16]}), protocol {protocol}", "",
             "| case | method | Dice | HD95 (mm) | NSD@2mm |", "|---|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['method']} | {r['dice']:.3f} | {_mm(r['hd95'])} | {r['nsd']:.3f} |" for r in rows]
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        mean = {k: float(np.mean([r[k] for r in mine])) for k in ("dice", "hd95", "nsd")}
        lines.append(f"| mean | {method} | {mean['dice']:.3f} | {_mm(mean['hd95'])} | {mean['nsd']:.3f} |")
    return "\n".join(lines)


def _mm(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.1f}"
