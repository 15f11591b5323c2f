"""Load on ``segment-with-sam2 serve`` (issue 20): N clients at once, each opening a session on
its own volume, making M preview clicks and one propagation with micro, on 127.0.0.1; and the same
work through the Python API in-process (VolumeSession, one lock for model work as the server
has) as the baseline, measured in the same run:

    python benchmarks/server_load.py [--clients 1,4,8] [--clicks 5]

After one untimed warm-up client, the N start together.  A click is a preview of its slice: the first on a slice encodes it, the rest reuse its features.
Server and baseline each run in a process of their own, so each peak RSS (VmHWM) is its own.
Writes benchmarks/results/server-load.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SLICES = (18, 24, 30)  # the clicked slices of the demo CT (48 slices, the organ on 15 to 32)


def volume_of(client: int):
    from SegmentWithSAM2Lib.synthetic import demo_ct

    return demo_ct(seed=client)  # each client its own image (its own upload)


def clicks_of(truth, count: int) -> list[tuple[int, dict]]:
    """(slice, prompts) of each click: a point on the organ, then a point more on the same slice."""
    out = []
    for n in range(count):
        k = SLICES[n // 2 % len(SLICES)]
        ks, js, is_ = np.nonzero(truth[k:k + 1])
        points = [{"position": [int(np.median(is_)) + d, int(np.median(js)), k]} for d in range(n % 2 + 1)]
        out.append((k, {"space": "IJK", "objects": [{"name": "organ", "label": 1, "points": points}]}))
    return out


BUDGET_MB = 1024  # each session's feature cache, in both: 8 sessions fit in the server's 8192 MB


def one_client(number: int, clicks: int, open_session, preview, propagate, close) -> dict:
    volume, truth = volume_of(number)
    started = time.perf_counter()
    open_session(volume)  # the upload and the session, timed apart from the clicks
    opened, latencies = time.perf_counter() - started, []
    for k, prompts in clicks_of(truth, clicks):
        started = time.perf_counter()
        preview(volume, prompts, k)
        latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    propagate(volume, clicks_of(truth, 1)[0][1])
    close()
    return {"open": opened, "clicks": latencies, "propagation": time.perf_counter() - started}


def scenario(clients: int, clicks: int, make_client) -> dict:
    """N threads, each one client; every error is counted, none swallowed silently."""
    results, errors = [], []

    def work(number):
        try:
            results.append(one_client(number, clicks, *make_client()))
        except Exception as error:  # noqa: BLE001  (counted and reported)
            errors.append(f"{type(error).__name__}: {error}")

    one_client(clients, 1, *make_client())  # warm-up, untimed: the first model call of a process is slow
    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies = sorted(ms for r in results for ms in r["clicks"])
    return {"clients": clients, "clicks": clicks, "errors": errors, "wall_s": round(wall, 2),
            "open_p50_s": round(statistics.median(r["open"] for r in results), 2) if results else None,
            "click_p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
            "click_mean_ms": round(1000 * statistics.fmean(latencies), 1) if latencies else None,
            "click_p95_ms": round(1000 * _p95(latencies), 1) if latencies else None,
            "propagations_per_min": round(60 * len(results) / wall, 1)}


def _p95(values):
    return values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]


def in_process(clients: int, clicks: int) -> dict:
    """The baseline: the Python API in this process, one lock for model work as the server."""
    from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession
    from SegmentWithSAM2Lib.io.models import load_model

    model, lock = load_model("micro", device="cpu", precision="fp32"), threading.Lock()

    def make_client():
        sessions = {}

        def session(volume):
            return sessions.setdefault(id(volume), VolumeSession(model, volume, feature_budget_mb=BUDGET_MB))

        def preview(volume, prompts, k):
            with lock:
                session(volume).preview(prompts, k)

        def propagate(volume, prompts):
            with lock:
                session(volume).propagate(prompts, PropagationOptions())
        return session, preview, propagate, sessions.clear

    row = scenario(clients, clicks, make_client)
    return dict(row, peak_rss_mb=_peak_rss_mb(os.getpid()))


def over_server(clients: int, clicks: int, folder: Path) -> dict:
    from SegmentWithSAM2Lib.remote import Client
    from SegmentWithSAM2Lib.remote.tokens import new_token

    token, port = new_token(folder / "tokens", f"bench{clients}"), _free_port()
    server = subprocess.Popen([sys.executable, "-m", "SegmentWithSAM2Lib.cli", "serve", "--model", "micro", "--device",
                               "cpu", "--precision", "fp32", "--port", str(port), "--tokens", str(folder / "tokens"),
                               "--max-sessions", str(clients), "--feature-budget-mb", str(BUDGET_MB),
                               "--memory-budget-mb", "8192", "--sessions-per-token", str(clients),
                               "--audit-log", str(folder / "audit.jsonl")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for(url, server)

        def make_client():
            client = Client(url, token)
            return (lambda volume: client.session(volume),
                    lambda volume, prompts, k: client.preview(volume, prompts, k),
                    lambda volume, prompts: client.segment(volume, prompts), client.close)

        row = scenario(clients, clicks, make_client)
        return dict(row, peak_rss_mb=_peak_rss_mb(server.pid))
    finally:
        server.terminate()
        server.wait(30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, server, seconds=120.0) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            opener.open(url + "/v1/health", timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not answer its health check")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def table(rows: list[dict], machine: str) -> str:
    lines = ["| clients | clicks each | via | open p50 (s) | click p50 (ms) | click p95 (ms) | click mean (ms) "
             "| mean vs in-process | propagations/min | errors | peak RSS (MB) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    baselines = {r["clients"]: r for r in rows if r["via"] == "in-process"}
    for r in rows:
        base = baselines.get(r["clients"])
        ratio = f"{r['click_mean_ms'] / base['click_mean_ms']:.2f}x" if base and r["click_mean_ms"] else "-"
        lines.append(f"| {r['clients']} | {r['clicks']} | {r['via']} | {r['open_p50_s']} | {r['click_p50_ms']} | "
                     f"{r['click_p95_ms']} | {r['click_mean_ms']} | "
                     f"{ratio} | {r['propagations_per_min']} | {len(r['errors'])} | {r['peak_rss_mb']} |")
    return "\n".join(lines) + f"\n\nMachine: {machine}\n\n" + READING


READING = """How to read it: "open" is the upload (hash, compress, send) and the session; a click is one
preview call end to end.  Clicks of all clients share one lock for model work in both, so a click
can wait behind another client's propagation: that wait is the p95.  In-process, Python's lock is
not fair (a thread that lets go may take it straight back), so one client's clicks run back to back
while the others wait: a low p50 beside a high p95.  The server's requests take turns; compare the
means.  On a machine with few cores the clients' own work (hashing, compressing, JSON) competes
with the server for the same cores, which the in-process baseline does not pay; on a GPU server
the clients sit on other machines.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,4,8")
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--in-process", type=int, help=argparse.SUPPRESS)  # the baseline's own process
    args = parser.parse_args(argv)
    if args.in_process:
        print(json.dumps(in_process(args.in_process, args.clicks)))
        return 0
    from SegmentWithSAM2Lib.machine import describe_machine, one_line

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for clients in (int(n) for n in args.clients.split(",")):
            done = subprocess.run([sys.executable, __file__, "--in-process", str(clients), "--clicks", str(args.clicks)],
                                  capture_output=True, text=True, check=True)
            rows.append(dict(json.loads(done.stdout.strip().splitlines()[-1]), via="in-process"))
            rows.append(dict(over_server(clients, args.clicks, Path(folder)), via="server"))
            print(rows[-2], rows[-1], sep="\n", flush=True)
    text = table(rows, one_line(describe_machine()))
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "server-load.md").write_text(text)
    (RESULTS / "server-load.json").write_text(json.dumps(rows, indent=1))
    return 0 if not any(r["errors"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
