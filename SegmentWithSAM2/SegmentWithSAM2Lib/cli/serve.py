"""``segment-with-sam2 serve``: one inference server per GPU for Slicer and Python clients.

``serve --tokens FILE --new-token NAME`` adds a token to the file, prints it once and exits.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import SegmentWithSAM2Error
from .model_args import add_model_arguments, model_from_args
from .segment import at_least_one


def add_parser(commands) -> None:
    parser = commands.add_parser("serve", help="serve models over HTTP to Slicer and Python clients")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback only; another "
                        "address needs --tokens)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--tokens", help="token file (NAME SHA256 per line); without it only loopback is served")
    parser.add_argument("--new-token", metavar="NAME", help="add a token for NAME to --tokens, print it once, exit")
    parser.add_argument("--max-sessions", type=at_least_one, default=8, help="sessions held at once (8)")
    parser.add_argument("--sessions-per-token", type=at_least_one, default=2, help="sessions one token may hold (2)")
    parser.add_argument("--lease-seconds", type=float, default=120.0, help="a session without any request, not even "
                        "a heartbeat, for this long expires (120)")
    parser.add_argument("--idle-seconds", type=float, default=1800.0, help="a session without model work for this "
                        "long expires (1800)")
    parser.add_argument("--max-upload-mb", type=float, default=2048.0, help="largest image accepted, compressed or "
                        "not (2048)")
    parser.add_argument("--feature-budget-mb", type=float, help="feature cache of one session (the library's default)")
    parser.add_argument("--memory-budget-mb", type=float, help="feature caches of all sessions together (default: "
                        "80%% of the free GPU memory, or half the RAM on a CPU)")
    parser.add_argument("--image-dir", help="keep uploaded images here (default: a temporary folder removed at exit)")
    parser.add_argument("--image-ttl", type=float, default=3600.0, help="seconds an unused image is kept (3600)")
    parser.add_argument("--audit-log", help="append-only audit log (default $XDG_STATE_HOME/segment-with-sam2/audit.jsonl)")
    parser.add_argument("--ssl-keyfile")
    parser.add_argument("--ssl-certfile")
    add_model_arguments(parser, several=True)
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..remote.connection import is_loopback
    from ..remote.tokens import TokenBook, new_token

    if args.new_token:
        if not args.tokens:
            raise SegmentWithSAM2Error("--new-token needs --tokens FILE: the file that keeps the token's hash")
        token = new_token(args.tokens, args.new_token)
        print(f"token for {args.new_token} (shown once; the file keeps only its hash):\n{token}")
        return 0
    if not args.tokens and not is_loopback(args.host):
        raise SegmentWithSAM2Error(f"--host {args.host} is reachable from other machines; give --tokens FILE "
                                   "(make one with --new-token NAME), or serve on 127.0.0.1 and use an SSH tunnel")
    if bool(args.ssl_keyfile) != bool(args.ssl_certfile):
        raise SegmentWithSAM2Error("TLS needs both --ssl-keyfile and --ssl-certfile")
    tokens = TokenBook.read(args.tokens) if args.tokens else None
    return _serve(args, tokens)


def _serve(args, tokens) -> int:
    import uvicorn

    from ..remote.server import create_app

    service = build_service(args)
    scheme = "https" if args.ssl_certfile else "http"
    names = f"{len(tokens.entries)} token(s)" if tokens else "no tokens: loopback only"
    print(f"serving {', '.join(service.models)} on {scheme}://{args.host}:{args.port} ({names}); audit log "
          f"{service.audit.path}", file=sys.stderr)
    uvicorn.run(create_app(service, tokens), host=args.host, port=args.port, ssl_keyfile=args.ssl_keyfile,
                ssl_certfile=args.ssl_certfile, log_level="info", timeout_graceful_shutdown=5)
    return 0


def build_service(args):
    """The models, image store, limits and audit log the options name."""
    from ..core.features import DEFAULT_BUDGET_MB
    from ..remote.audit import AuditLog
    from ..remote.images import ImageStore
    from ..remote.leases import Limits
    from ..remote.service import Service

    models = load_models(args)
    budget = args.feature_budget_mb or DEFAULT_BUDGET_MB
    limits = Limits(args.max_sessions, args.sessions_per_token, args.memory_budget_mb or _memory_mb(models),
                    args.lease_seconds, args.idle_seconds)
    images = ImageStore(args.image_dir, int(args.max_upload_mb * 2 ** 20), args.image_ttl)
    return Service(models, images, limits, AuditLog(args.audit_log or _state_dir() / "audit.jsonl"), budget)


def load_models(args) -> dict:
    """name -> loaded model: each --model, or the --checkpoint (named by its file)."""
    if args.checkpoint:
        if args.model and len(args.model) > 1:
            raise SegmentWithSAM2Error("--checkpoint serves one model; give one --model (its name) or none")
        name = (args.model or [Path(args.checkpoint).stem])[0]
        return {name: model_from_args(argparse.Namespace(**{**vars(args), "model": args.model and args.model[0]}))}
    names = args.model or [None]
    models = {}
    for name in names:
        model = model_from_args(argparse.Namespace(**{**vars(args), "model": name}))
        models[name or model.model_id] = model
    return models


def _memory_mb(models: dict) -> float:
    import torch

    device = next(iter(models.values())).device
    if device.type == "cuda":
        return 0.8 * torch.cuda.mem_get_info(device)[0] / 2 ** 20
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 21


def _state_dir() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "segment-with-sam2"
