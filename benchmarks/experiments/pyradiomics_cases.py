"""Evaluation on the five real patient scans of the pyradiomics 3.0.1 source archive
(brain1/2 and breast1 MRI, lung1/2 CT, each with a tumour mask).  Evaluation only: these cases
are never used for training.

    python benchmarks/experiments/pyradiomics_cases.py [--model lite] [--protocols box,point,corrector]
        [--baseline region-growing,litemedsam-slices]

litemedsam-slices (MedSAM's own recipe) starts from a box: it runs with the box protocol only.

The archive (34 MB) comes from PyPI through pip, is checked against its SHA-256 and cached;
results go to benchmarks/results/pyradiomics-<model>-<protocol>.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from SegmentWithSAM2Lib.cli import main as cli
from SegmentWithSAM2Lib.io.model_zoo import cache_dir
from SegmentWithSAM2Lib.io.sample_data import CASES, pyradiomics_case

RESULTS = Path(__file__).resolve().parents[1] / "results"


def cases_list(folder: Path) -> Path:
    """Fetch (once) and unpack the cases; returns a list file for ``evaluate --data``."""
    for case in CASES:
        pyradiomics_case(case, folder)
    listing = folder / "cases.txt"
    listing.write_text("".join(f"{case}_image.nrrd {case}_label.nrrd\n" for case in CASES))
    return listing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lite")
    parser.add_argument("--protocols", default="box,point,corrector")
    parser.add_argument("--rounds", default="3")
    parser.add_argument("--baseline", default="region-growing,litemedsam-slices",
                        help="comma-separated: region-growing, litemedsam-slices (box protocol only) or none")
    parser.add_argument("--cache", type=Path, default=cache_dir() / "pyradiomics-3.0.1")
    args = parser.parse_args(argv)
    listing = cases_list(args.cache)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for protocol in args.protocols.split(","):
        report = RESULTS / f"pyradiomics-{args.model}-{protocol}.json"
        baseline = ",".join(b for b in args.baseline.split(",") if protocol == "box" or b != "litemedsam-slices")
        status = cli(["evaluate", "--data", str(listing), "--model", args.model, "--protocol", protocol,
                      "--rounds", args.rounds, "--baseline", baseline or "none", "--report", str(report)])
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
