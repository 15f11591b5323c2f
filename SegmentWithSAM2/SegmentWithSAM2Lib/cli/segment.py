"""``segment-with-sam2 segment IMAGE --prompts FILE --output FILE``: one volume, one labelmap."""

from __future__ import annotations

import argparse
import sys

from ..options import AXES, DIRECTIONS, MEDSAM2_HOLE_PX, PRESETS, SEG_TYPES, STOP_AFTER
from .model_args import add_model_arguments, choice, model_from_args
from .progress import ProgressBar


def add_parser(commands) -> None:
    parser = commands.add_parser("segment", help="segment a volume from a prompt file")
    parser.add_argument("image", help="NIfTI, NRRD, MetaImage file or DICOM series folder")
    parser.add_argument("--prompts", required=True, help="prompt JSON file (see the README)")
    parser.add_argument("--output", required=True, help="labelmap: .nii.gz, .nrrd, .seg.nrrd (segments) or .dcm "
                        "(DICOM-SEG, for a DICOM input)")
    add_dicom_options(parser)
    add_model_arguments(parser)
    add_segment_options(parser)
    parser.set_defaults(run=run)


def add_dicom_options(parser) -> None:
    parser.add_argument("--series", help="SeriesInstanceUID to read when a DICOM folder holds several")
    parser.add_argument("--seg-type", default="binary", type=choice(SEG_TYPES, "DICOM-SEG type"),
                        help="DICOM-SEG output: binary (default; read by most viewers) or labelmap")


def add_segment_options(parser) -> None:
    """The options of one propagation, shared by ``segment`` and ``batch``."""
    parser.add_argument("--axis", default="auto", type=choice(AXES, "slice axis"), help=", ".join(AXES))
    parser.add_argument("--window", default="auto", help="auto, none, mr, percentile[:LOW,HIGH], CENTER,WIDTH or a CT "
                        "preset; medsam2[:WINDOW] for MedSAM2's 8-bit intensity path")
    parser.add_argument("--direction", default="both", type=choice(DIRECTIONS, "direction"), help=", ".join(DIRECTIONS))
    parser.add_argument("--range", dest="slice_range", type=slice_range, help="FIRST:LAST slice indices, inclusive")
    parser.add_argument("--no-auto-stop", dest="auto_stop", action="store_false", default=None)
    parser.add_argument("--auto-stop", dest="auto_stop", action="store_true",
                        help="stop a direction once the object is gone (the default, except with --preset medsam2)")
    parser.add_argument("--stop-after", type=at_least_one, default=STOP_AFTER,
                        help=f"empty slices before a direction stops ({STOP_AFTER})")
    parser.add_argument("--no-postprocess", dest="postprocess", action="store_false")
    parser.add_argument("--keep-largest-component", action="store_true",
                        help="keep each object's largest 3D connected component only")
    parser.add_argument("--fill-holes-px", type=at_least_zero, default=0, metavar="N",
                        help=f"fill holes up to N pixels in sam2's low-resolution masks, as sam2 does on a GPU "
                        f"({MEDSAM2_HOLE_PX}); 0: off")
    parser.add_argument("--preset", default="none", type=choice(PRESETS, "preset"),
                        help="medsam2: MedSAM2's published CT pipeline (8-bit intensity, both directions without "
                        "auto-stop, largest 3D component, hole filling; see the README)")


def segment_options(args) -> dict:
    """The keyword arguments of ``api.segment`` the options name."""
    from ..core.postprocess import PostProcess

    return {"axis": args.axis, "window": args.window, "direction": args.direction, "slice_range": args.slice_range,
            "auto_stop": args.auto_stop, "stop_after": args.stop_after,
            "postprocess": PostProcess() if args.postprocess else None,
            "keep_largest_component": args.keep_largest_component, "fill_holes_px": args.fill_holes_px,
            "preset": args.preset}


def at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of slices, at least 1; got {text!r}")
    return value


def at_least_zero(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of pixels, 0 or more; got {text!r}")
    return int(text)


def slice_range(text: str):
    try:
        first, last = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"range must be FIRST:LAST (two slice indices), got {text!r}") from None
    return first, last


def run(args) -> int:
    from .. import api
    from ..io.labelmaps import check_output_path
    from ..io.prompt_file import read_prompt_file

    output = check_output_path(args.output, inputs=[args.image, args.prompts])
    volume = api.read_volume(args.image, series=args.series)
    check_output_path(output, volume, inputs=[args.image, args.prompts])  # free space, format
    prompts = read_prompt_file(args.prompts, volume)
    api.check_prompts(volume, prompts, axis=args.axis)
    model = model_from_args(args)
    print(f"model {model.model_id} ({model.config.name}, {model.image_size} px, {model.device}, "
          f"{model.precision}), weights {model.weights}", file=sys.stderr)
    with ProgressBar() as bar:
        result = api.segment(model, volume, prompts, **segment_options(args), on_progress=bar.slices)
    lower, upper, source = result.settings["window"]
    print(f"window {lower:g} to {upper:g} (centre {(lower + upper) / 2:g}, width {upper - lower:g}; {source})",
          file=sys.stderr)
    api.write_result(result, output, overwrite=True, seg_type=args.seg_type)  # replaces an earlier result
    print(f"wrote {output} ({result.seconds:.1f} s, slices {result.slices_processed})", file=sys.stderr)
    return 0
