"""``models``, ``download``, ``verify``, ``remove``: the catalogue and the checkpoint cache."""

from __future__ import annotations

from ..errors import Remedy, SegmentWithSAM2Error
from .progress import ProgressBar


def add_parser(commands) -> None:
    models = commands.add_parser("models", help="list the known models and what is cached")
    models.add_argument("--verify", action="store_true", help="also check the SHA-256 of cached files")
    models.set_defaults(run=run_models)
    download = commands.add_parser("download", help="download a registry model into the cache (resumable)")
    download.add_argument("model_id")
    download.add_argument("--timeout", type=float, default=30.0, help="seconds without data before giving up")
    download.add_argument("--max-time", type=float, default=4 * 3600.0,
                          help="seconds for the whole transfer before giving up (resumable; 4 hours)")
    download.add_argument("--offline", action="store_true", help="never touch the network; fail if not cached")
    download.add_argument("--repin", action="store_true", help="forget the cached file and the hash pinned for it, "
                          "then download and pin it again (only when you know upstream changed it)")
    download.set_defaults(run=run_download)
    verify = commands.add_parser("verify", help="check a cached model's SHA-256")
    verify.add_argument("model_id")
    verify.set_defaults(run=run_verify)
    remove = commands.add_parser("remove", help="delete a cached model (and any partial download)")
    remove.add_argument("model_id")
    remove.set_defaults(run=run_remove)


def run_models(args) -> int:
    from ..io.model_cache import cache_entry
    from ..io.model_zoo import cache_dir, load_registry

    print(f"{'id':26} {'image':>5}  {'cached':>9}  {'state':10} config")
    for model_id, spec in load_registry().items():
        entry = cache_entry(model_id, check=args.verify)
        size = f"{entry.size / 1e6:.1f}MB" if entry.size is not None else "-"
        print(f"{model_id:26} {spec.image_size:>5}  {size:>9}  {entry.state:10} {spec.config}")
    print(f"cache: {cache_dir()}")
    return 0


def run_download(args) -> int:
    from ..io.model_cache import download_model

    with ProgressBar("B", args.model_id) as bar:
        path = download_model(args.model_id, timeout=args.timeout, max_seconds=args.max_time, offline=args.offline,
                              repin=args.repin, on_progress=bar.download)
    print(f"{args.model_id}: {path} (verified)")
    return 0


def run_verify(args) -> int:
    from ..io.model_cache import cache_entry

    entry = cache_entry(args.model_id, check=True)
    print(f"{args.model_id}: {entry.state} ({entry.path})")
    if entry.state in ("absent", "MISMATCH"):
        remedy = Remedy("restore_file", str(entry.path)) if entry.spec.shipped else Remedy("download", args.model_id)
        raise SegmentWithSAM2Error(f"{args.model_id} is {entry.state.lower()}", remedy)
    return 0


def run_remove(args) -> int:
    from ..io.model_cache import remove_model

    print(f"{args.model_id}: {'removed' if remove_model(args.model_id) else 'was not cached'}")
    return 0
