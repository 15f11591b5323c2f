"""A LoRA fine-tune of the bundled micro model on one synthetic structure it was not trained on
(the wall of a hollow organ, ``--synthetic-shapes shell``): validation Dice before and after, on
held-out volumes of that structure, same run.

    python benchmarks/experiments/lora_micro.py [--steps 300] [--rank 8] [--output runs/lora-shell]
                                            [--device cuda --precision bf16]

Writes results/lora-micro-shell-{before,after}.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from SegmentWithSAM2Lib.cli import main as cli

RESULTS = Path(__file__).resolve().parents[1] / "results"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="300")
    parser.add_argument("--output", type=Path, default=Path("runs/lora-shell"))
    parser.add_argument("--cases", default="6")
    parser.add_argument("--rank", default="8")
    parser.add_argument("--lr", default="1e-3")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--baseline", default="region-growing", help="or none (where SimpleITK is missing)")
    args = parser.parse_args(argv)
    common = ["--device", args.device, "--precision", args.precision]
    args.results.mkdir(parents=True, exist_ok=True)
    evaluate = ["evaluate", "--model", "micro", "--synthetic", args.cases, "--synthetic-shapes", "shell",
                "--baseline", args.baseline, *common]
    before, after = args.results / "lora-micro-shell-before.json", args.results / "lora-micro-shell-after.json"
    status = cli([*evaluate, "--report", str(before)])
    status = status or cli(["train", "--model", "micro", "--mode", "lora", "--rank", args.rank, "--synthetic", "60",
                            "--synthetic-shapes", "shell", "--steps", args.steps, "--clip-length", "5", "--lr", args.lr,
                            "--output", str(args.output), *common])
    status = status or cli([*evaluate, "--adapter", str(args.output / "adapter"), "--report", str(after)])
    if status:
        return status
    mean = {}
    for name, path in (("before", before), ("after", after)):
        rows = [r for r in json.loads(path.read_text())["rows"] if r["method"] == "engine"]
        mean[name] = sum(r["dice"] for r in rows) / len(rows)
    print(f"micro on held-out shells, mean Dice: before {mean['before']:.3f}, after LoRA {mean['after']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
