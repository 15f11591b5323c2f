"""``make bench``: the engine against sam2 used the usual ways, same run, same machine.

Each (workload, method) runs in its own child process so that its peak RSS is its own; times
are medians of ``--repeats`` runs after one warm-up.  Results: a table on stdout and
``results/bench-<date>.{json,md}`` with the machine and library versions.

    python benchmarks/bench.py [--workloads W1,W2,W3,W4,W5,W6] [--repeats 3] [--quick]

``--quick`` shrinks every volume (for a smoke test of the harness; its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workloads  # noqa: E402

from SegmentWithSAM2Lib.machine import describe_machine, one_line  # noqa: E402

RESULTS = HERE / "results"


def run_child(workload: str, method: str, repeats: int, quick: bool) -> dict:
    command = [sys.executable, str(HERE / "workloads.py"), workload, method, "--repeats", str(repeats)]
    if quick:
        command.append("--quick")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"workload": workload, "method": method, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(workloads.WORKLOADS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = []
    for name in args.workloads.split(","):
        for method in workloads.WORKLOADS[name]["methods"]:
            row = run_child(name, method, args.repeats, args.quick)
            print(_line(row), flush=True)
            rows.append(row)
    machine = describe_machine()
    table = workloads.summary(rows, machine)
    print("\n" + table)
    args.output.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    suffix = "-quick" if args.quick else ""
    (args.output / f"bench-{stamp}{suffix}.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    (args.output / f"bench-{stamp}{suffix}.md").write_text(f"Machine: {one_line(machine)}\n\n{table}\n")
    return 1 if any("error" in r for r in rows) else 0


def _line(row: dict) -> str:
    if "error" in row:
        return f"{row['workload']} {row['method']}: FAILED {row['error']}"
    return f"{row['workload']} {row['method']}: {row.get('seconds', float('nan')):.2f} s, peak RSS {row['peak_rss_mb']:.0f} MB"


if __name__ == "__main__":
    sys.exit(main())
