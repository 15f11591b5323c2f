"""What the engine's one-window-per-volume rule costs LiteMedSAM (issue 17): 2D Dice of
LiteMedSAM's mask from one tight box on each pyradiomics case's middle tumour slice, with the
frame made two ways from the same windowed slice (lung window for CT, 0.5-99.5 % for MR):

- per volume: the engine's frame (the window's bounds map to 0 and 1 for every slice);
- per slice: upstream's scaling, the windowed slice min-max rescaled to [0, 1] on its own.

Everything else is the engine's (in-plane fit, box placement) and LiteMedSAM's own decoder inside
the lite model (which reproduces the package's masks exactly: Testing/lite).  Evaluation only.

    python benchmarks/experiments/lite_intensity.py
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import torch

from SegmentWithSAM2Lib.api import read_volume
from SegmentWithSAM2Lib.core.engine import VolumeSession
from SegmentWithSAM2Lib.core.metrics import dice, middle_slice_box
from SegmentWithSAM2Lib.io.model_zoo import cache_dir
from SegmentWithSAM2Lib.machine import describe_machine, one_line
from SegmentWithSAM2Lib.training.litemedsam_slices import litemedsam_model

from pyradiomics_cases import CASES, RESULTS, cases_list

WINDOWS = {"lung1": "lung", "lung2": "lung"}  # the CTs; the MRs take "mr" (0.5-99.5 %)


def decode(model, frame: torch.Tensor, box) -> torch.Tensor:
    predictor = model.predictor
    with torch.inference_mode():
        _, feats, pos, sizes = predictor._prepare_backbone_features(predictor.forward_image(frame[None]))
        out = predictor.track_step(
            frame_idx=0, is_init_cond_frame=True, current_vision_feats=feats, current_vision_pos_embeds=pos,
            feat_sizes=sizes, point_inputs={"point_coords": torch.tensor([box], dtype=torch.float32).view(1, 2, 2),
                                            "point_labels": torch.tensor([[2, 3]])},
            mask_inputs=None, output_dict={"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}, num_frames=1,
            track_in_reverse=False, run_mem_encoder=False)
    return out["pred_masks"][0]  # (1, S, S) logits


def case_dice(model, folder: Path, case: str) -> tuple[float, float]:
    volume = read_volume(folder / f"{case}_image.nrrd")
    truth = read_volume(folder / f"{case}_label.nrrd").array > 0
    session = VolumeSession(model, volume, axis="k", window=WINDOWS.get(case, "mr"))
    (index, inputs), = session.place(middle_slice_box(truth.astype(np.uint8), 1))[0].slices.items()
    box, truth = inputs.box, session.plan.view_of(truth)  # the slice as the engine sees it
    windowed = torch.from_numpy(session.frames.windowed_slice(index))[None] / 255.0
    scores = []
    for gray in (windowed, (windowed - windowed.min()) / max(float(windowed.max() - windowed.min()), 1e-6)):
        frame = session.inplane.image_to_frame(gray).expand(3, -1, -1)
        mask = session.inplane.frame_to_image(decode(model, frame, box))[0].numpy() > 0
        scores.append(dice(mask, truth[index]))
    return tuple(scores)


def main() -> int:
    folder = cases_list(cache_dir() / "pyradiomics-3.0.1").parent
    model = litemedsam_model()
    rows = [(case, *case_dice(model, folder, case)) for case in CASES]
    lines = [f"# LiteMedSAM 2D Dice: per-volume window vs per-slice scaling ({datetime.date.today()})", "",
             f"Machine: {one_line(describe_machine())}; command: `python benchmarks/experiments/lite_intensity.py`", "",
             "| case | per volume (engine) | per slice (upstream) |", "|---|---|---|"]
    lines += [f"| {case} | {a:.3f} | {b:.3f} |" for case, a, b in rows]
    lines.append(f"| mean | {np.mean([r[1] for r in rows]):.3f} | {np.mean([r[2] for r in rows]):.3f} |")
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lite-intensity.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
