"""Where the engine's time goes: torch.profiler over one propagation (W1's or W6's case), the
operators with the most device and host time.

    python benchmarks/profile_engine.py [--config medsam2_512.yaml] [--slices 60] [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import box_prompts, ct_case  # noqa: E402

from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession  # noqa: E402
from SegmentWithSAM2Lib.io.models import load_model  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/sam2.1/sam2.1_hiera_t.yaml")
    parser.add_argument("--slices", type=int, default=60)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args(argv)
    volume, _, middle, box = ct_case(args.slices, 512)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model(config=args.config, random_init=True, seed=0, device=args.device, precision=args.precision)
    options = PropagationOptions(auto_stop=False, postprocess=None)
    VolumeSession(model, volume, axis="k", window="soft-tissue").propagate(box_prompts(box, middle), options)  # warm-up
    session = VolumeSession(model, volume, axis="k", window="soft-tissue")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if model.device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        result = session.propagate(box_prompts(box, middle), options)
    print(f"{model.device} {model.precision}: {result.seconds:.2f} s for {sum(result.slices_processed.values())} slices")
    keys = ["self_cuda_time_total", "self_cpu_time_total"] if model.device.type == "cuda" else ["self_cpu_time_total"]
    for key in keys:
        print(prof.key_averages().table(sort_by=key, row_limit=args.rows, max_name_column_width=60))
    return 0


if __name__ == "__main__":
    sys.exit(main())
