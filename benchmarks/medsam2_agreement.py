"""``--preset medsam2`` against MedSAM2's own ``medsam2_infer_3D_CT.py`` on one volume (issue 21),
with the same random-weights MedSAM2-architecture checkpoint, not part of ``make test``:

    python benchmarks/medsam2_agreement.py --medsam2-repo PATH/TO/MedSAM2 [--case lung2]
        [--window -600,1500] [--checkpoint FILE] [--python PYTHON]

Their script is run unmodified, in its own process, with their sam2 fork first on the path; it
needs CUDA (it calls ``.cuda()``) and reads DeepLesion's layout, so the case is written in that
layout: the image as ``CT_DeepLesion/images/000001_01_01_000-NNN.nii.gz`` and one row of
``DeepLesion_Dataset_Info.csv`` (window bounds, key slice, its box).  The key slice is the label's
largest; the box is the label's bounding box on it, in pixels.  Ours runs through the API with the
same box as a prompt.  Prints the Dice and the differing voxels, and writes
benchmarks/results/medsam2-agreement.{md,json} with the command and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
THEIR_CONFIG = "configs/sam2.1_hiera_t512.yaml"  # MedSAM2's 512-px tiny config, in their sam2 fork


def key_slice_and_box(label: np.ndarray) -> tuple[int, list[int]]:
    """The slice with most label voxels and the label's box there: x_min, y_min, x_max, y_max."""
    key = int(np.argmax((label > 0).sum(axis=(1, 2))))
    rows, cols = np.nonzero(label[key] > 0)
    return key, [int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())]


def write_deeplesion_case(folder: Path, image_path: Path, key: int, box: list[int], bounds) -> Path:
    """The volume and its CSV row as their script reads them; the images folder."""
    import SimpleITK as sitk

    image = sitk.ReadImage(str(image_path))
    images = folder / "CT_DeepLesion" / "images"
    images.mkdir(parents=True)
    last = image.GetSize()[2] - 1
    sitk.WriteImage(image, str(images / f"000001_01_01_000-{last:03d}.nii.gz"))
    x0, y0, x1, y1 = box  # their script swaps the CSV's pairs back into x, y order
    row = {"File_name": "000001_01_01_000.png", "Key_slice_index": key, "Slice_range": f"0, {last}",
           "DICOM_windows": f"{bounds[0]:g}, {bounds[1]:g}", "Bounding_boxes": f"{y0}, {x0}, {y1}, {x1}"}
    header = ",".join(row)
    values = ",".join(f'"{v}"' for v in row.values())
    (folder / "CT_DeepLesion" / "DeepLesion_Dataset_Info.csv").write_text(f"{header}\n{values}\n")
    return images


def run_theirs(repo: Path, python: str, folder: Path, images: Path, checkpoint: Path) -> np.ndarray:
    import SimpleITK as sitk

    out = folder / "theirs"
    env = dict(os.environ, PYTHONPATH=f"{repo}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    command = [python, str(repo / "medsam2_infer_3D_CT.py"), "--checkpoint", str(checkpoint), "--cfg", THEIR_CONFIG,
               "-i", str(images), "-o", str(out)]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"MedSAM2's script failed (it needs CUDA and its own requirements):\n{done.stderr[-3000:]}")
    (mask,) = sorted(out.glob("*_mask.nii.gz"))
    return sitk.GetArrayFromImage(sitk.ReadImage(str(mask))) > 0


def run_ours(volume, checkpoint: Path, key: int, box: list[int], window: str):
    import torch

    from SegmentWithSAM2Lib import api

    cuda = torch.cuda.is_available()
    model = api.load_model(checkpoint=str(checkpoint), config="medsam2_512.yaml", device="cuda" if cuda else "cpu",
                           precision="bf16" if cuda else "fp32")  # theirs autocasts to bf16 on CUDA
    corners = {"corner1": [box[0], box[1], key], "corner2": [box[2], box[3], key]}
    prompts = {"space": "IJK", "objects": [{"name": "lesion", "label": 1, "boxes": [corners]}]}
    return api.segment(model, volume, prompts, preset="medsam2", window=window)


def random_checkpoint(folder: Path, seed: int) -> Path:
    import torch

    from SegmentWithSAM2Lib.io.models import load_model

    model = load_model(config="medsam2_512.yaml", random_init=True, seed=seed, device="cpu")
    path = folder / f"medsam2_random_seed{seed}.pt"
    torch.save({"model": model.predictor.state_dict()}, path)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--medsam2-repo", type=Path, required=True, help="a checkout of bowang-lab/MedSAM2")
    parser.add_argument("--case", default="lung2", help="a pyradiomics case with a label (lung2)")
    parser.add_argument("--window", default="-600,1500", help="CENTER,WIDTH; their bounds are its ends")
    parser.add_argument("--checkpoint", type=Path, help="default: random MedSAM2-architecture weights, seed 0")
    parser.add_argument("--python", default=sys.executable, help="the Python that runs their script")
    args = parser.parse_args(argv)
    from SegmentWithSAM2Lib.api import read_volume
    from SegmentWithSAM2Lib.core.geometry import plan_slices
    from SegmentWithSAM2Lib.core.metrics import dice
    from SegmentWithSAM2Lib.io.sample_data import pyradiomics_case
    from SegmentWithSAM2Lib.machine import describe_machine, one_line

    image_path, label_path = pyradiomics_case(args.case)
    volume, label = read_volume(image_path), read_volume(label_path).array
    plan = plan_slices(volume, "auto")
    if plan.slice_axis != 2 or plan.flip_rows or plan.flip_cols or volume.array.shape[1:] != (512, 512):
        raise SystemExit("this comparison needs 512 x 512 axial slices stored unflipped (their script neither "
                         "reorients nor keeps aspect ratios)")
    center, width = (float(v) for v in args.window.split(","))
    bounds = (center - width / 2, center + width / 2)
    key, box = key_slice_and_box(label)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        checkpoint = args.checkpoint or random_checkpoint(folder, 0)
        images = write_deeplesion_case(folder, image_path, key, box, bounds)
        theirs = run_theirs(args.medsam2_repo.resolve(), args.python, folder, images, checkpoint)
        ours = run_ours(volume, checkpoint, key, box, args.window).labelmap == 1
    row = {"case": args.case, "key_slice": key, "box": box, "window_bounds": bounds, "voxels": int(ours.size),
           "theirs": int(theirs.sum()), "ours": int(ours.sum()), "differing": int((ours != theirs).sum()),
           "dice": round(float(dice(ours, theirs)), 6), "command": " ".join(["python"] + sys.argv),
           "machine": one_line(describe_machine())}
    text = (f"| case | key slice | box | their voxels | our voxels | differing | Dice |\n|---|---|---|---|---|---|---|\n"
            f"| {row['case']} | {key} | {box} | {row['theirs']} | {row['ours']} | {row['differing']} | {row['dice']} |\n\n"
            f"Command: `{row['command']}`\n\nMachine: {row['machine']}\n")
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "medsam2-agreement.md").write_text(text)
    (RESULTS / "medsam2-agreement.json").write_text(json.dumps(row, indent=1))
    return 0 if row["differing"] <= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
