"""``segment-with-sam2 train``: fine-tune (lora, full) or train (scratch) on annotated volumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SegmentWithSAM2Error
from ..options import TRAINING_MODES
from .model_args import add_model_arguments, choice, model_from_args
from .progress import ProgressBar

DATA_HELP = "list file of 'IMAGE LABELMAP' lines, or a folder with images/ and labels/"
SHAPES_HELP = "synthetic structures to draw from: blob,tube,shell,twins (default: the blob/tube mix micro was trained on)"


def add_parser(commands) -> None:
    parser = commands.add_parser("train", help="fine-tune (lora/full) or train (scratch) on annotated volumes")
    parser.add_argument("--data", help=DATA_HELP)
    parser.add_argument("--labels", help="only these label values are structures to learn, e.g. 37,38,71-78 "
                        "(others become background)")
    parser.add_argument("--synthetic-shapes", help=SHAPES_HELP)
    parser.add_argument("--synthetic", type=int, default=0, help="generate this many synthetic volumes to train on")
    parser.add_argument("--validation-data", help="held-out (image, labelmap) pairs, as --data, to report the "
                        "validation Dice on (every structure, one box each); default: 6 held-out synthetic volumes")
    parser.add_argument("--mode", default="full", type=choice(TRAINING_MODES, "training mode"),
                        help=", ".join(TRAINING_MODES))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--clip-length", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank")
    parser.add_argument("--freeze", metavar="MODULES", help="full/scratch mode: leave these modules' weights as "
                        "they are, e.g. image_encoder or image_encoder,memory_encoder")
    parser.add_argument("--output", required=True, help="folder for checkpoints, the log and the result")
    parser.add_argument("--window", help="one window for every clip (e.g. auto); default: a jittered one per clip")
    parser.add_argument("--memo-frames", type=int, default=0, help="keep a frozen image encoder's output for this "
                        "many frames and reuse it (with --window fixed; about 4 MB a frame for lite)")
    parser.add_argument("--no-augment", action="store_true", help="no zoom or intensity augmentation (only flips), "
                        "so that frames repeat and --memo-frames reuses them")
    parser.add_argument("--exit-clips", type=float, default=0.0, metavar="SHARE", help="share of clips that start "
                        "near an object's end and run out of it (teaches the object score where objects end)")
    parser.add_argument("--object-weight", type=float, default=1.0, metavar="W", help="weight of the object-presence "
                        "loss beside the mask losses (SAM2's: 1); more makes the object score, and so auto-stop, "
                        "learn faster")
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..training.fine_tune import TrainConfig, check_training, train_model

    if args.synthetic <= 0 and not args.data:
        raise SegmentWithSAM2Error("give --data (a list file or a folder with images/ and labels/) and/or --synthetic N")
    data = training_data(args)
    model = model_from_args(args, random_init=args.random_init or args.mode == "scratch")
    config = TrainConfig(mode=args.mode, steps=args.steps, clip_length=args.clip_length, lr=args.lr, rank=args.rank,
                         freeze=tuple(m.strip() for m in (args.freeze or "").split(",") if m.strip()), seed=args.seed,
                         window=args.window, memo_frames=args.memo_frames, augment=not args.no_augment,
                         exits=args.exit_clips, object_weight=args.object_weight)
    check_training(model, data, config)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    with open(output / "train.log", "a") as log, ProgressBar("step", "training") as bar:
        def log_line(line):
            print(line, file=log, flush=True)
            bar.write(line)
        path = train_model(model, data, config, output, on_step=bar.steps, log=log_line)
    print(f"wrote {path}")
    return 0


def training_data(args):
    """The training and validation catalogues the options name (synthetic volumes from --seed)."""
    from ..synthetic import parse_shapes
    from ..training.data import catalogue, held_out_synthetic, parse_labels, read_pairs, synthetic_pairs
    from ..training.fine_tune import TrainingData

    labels = parse_labels(args.labels)
    files = read_pairs(args.data, labels) if args.data else []
    shapes = parse_shapes(args.synthetic_shapes)
    synthetic = synthetic_pairs(np.random.default_rng(args.seed), args.synthetic, shapes)
    validation = held_out_synthetic(args.seed, shapes)
    if args.validation_data:
        validation = catalogue(read_pairs(args.validation_data, labels))
        if not validation:
            raise SegmentWithSAM2Error(f"--validation-data {args.validation_data} holds no labelled structure "
                                       "(after --labels)")
    return TrainingData(catalogue(files), catalogue(synthetic), validation,
                        f"{args.data or ''} + {args.synthetic} synthetic volumes (seed {args.seed})")
