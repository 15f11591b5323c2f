"""The batch on a Ray cluster (``--ray ADDRESS|auto|local``; the ``[ray]`` extra): one actor per
worker loads the model once (checking its weights' hash), reads, segments and writes its cases
to the shared output folder; this driver alone writes sidecars and the manifest.  A case's
exception comes back as that case's failure; a dead worker's cases are retried on a restarted or
another worker up to ``max_retries`` (Ray's actor tasks are at-most-once, so retries are ours;
outputs are written atomically, so a retry is safe)."""

from __future__ import annotations

import os
import socket
import time
import traceback

from .embedded import Batch, segment_case
from .inputs import read_case

IN_FLIGHT = 2  # cases queued per worker: the next is ready when one finishes


class CaseWorker:
    """A Ray actor's state: the model, loaded once."""

    def __init__(self, model_options: dict, expected_weights: str | None):
        import torch

        from ..io.models import load_model

        torch.set_num_threads(int(model_options.pop("threads", 0)) or torch.get_num_threads())
        self.model = load_model(**model_options)
        if expected_weights and self.model.weights != expected_weights:
            raise RuntimeError(f"worker on {socket.gethostname()} loaded weights {self.model.weights}, not the "
                               f"driver's {expected_weights}: the checkpoint differs on this machine")
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def identity(self) -> tuple[str, int]:
        return self.name, os.getpid()

    def run(self, case, request, output) -> dict:
        """The case's sidecar record, or a failure {status, error, traceback}: never an exception."""
        try:
            inputs = read_case(case, request.source)
            if inputs.status != "ok":
                return {"status": inputs.status, "error": inputs.error, "traceback": "", "worker": self.name}
            return {**segment_case(inputs, self.model, request, output), "worker": self.name}
        except Exception as error:  # noqa: BLE001  (the case's failure, reported to the driver)
            return {"status": "failed", "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc(),
                    "worker": self.name}


def connect(address: str, workers: int, gpus_per_worker: float):
    """``local``: a cluster on this machine, sized for the workers; ``auto`` or an address: attach."""
    import ray

    if address == "local":
        ray.init(num_cpus=max(workers, 1), num_gpus=None if gpus_per_worker else 0, include_dashboard=False,
                 log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)
    return ray


def run_on_ray(batch: Batch, todo: list, model_options: dict, expected_weights, *, address="local", workers=2,
               gpus_per_worker=0.0, max_retries=2, on_workers=lambda identities: None) -> None:
    ray = connect(address, workers, gpus_per_worker)
    try:
        actor = ray.remote(num_cpus=1, num_gpus=gpus_per_worker, max_restarts=max_retries + 1)(CaseWorker)
        # on this machine the workers share its cores: more torch threads than cores is slower
        threads = max(1, (os.cpu_count() or 1) // workers) if address == "local" else 0
        pool = [actor.remote(dict(model_options, threads=threads), expected_weights) for _ in range(workers)]
        identities = ray.get([w.identity.remote() for w in pool])  # a worker that cannot load the model fails here
        on_workers(identities)
        _drive(ray, batch, todo, pool, max_retries)
    finally:
        ray.shutdown()


def _drive(ray, batch: Batch, todo: list, pool: list, max_retries: int) -> None:
    queue = [(case, 1) for case in todo]  # (case, attempt)
    running = {}  # object ref -> (case, attempt, worker index, lock, start)
    waking = {}  # a restarting worker's identity call -> (worker index, calls so far)
    while queue or running:
        _submit(batch, queue, running, pool, busy=set(i for i, _ in waking.values()))
        if not running and not waking:
            break
        (ref,), _ = ray.wait(list(running) + list(waking), num_returns=1)
        if ref in waking:
            _wake(ray, ref, waking, pool, max_retries)
            continue
        case, attempt, index, lock, began = running.pop(ref)
        lock.release()
        try:
            record = ray.get(ref)
        except ray.exceptions.RayActorError as error:  # the worker died (killed, out of memory, crashed)
            if index not in {i for i, _ in waking.values()}:
                waking[pool[index].identity.remote()] = (index, 1)  # its restart: no cases until it answers
            retry = attempt <= max_retries
            batch.fail(case.case_id, "failed", f"worker died ({type(error).__name__}); "
                       + ("retried" if retry else "no retries left"), str(error), time.monotonic() - began,
                       attempt=attempt, worker=f"actor {index}")
            if retry:
                queue.insert(0, (case, attempt + 1))
            continue
        _settle(batch, case, record, attempt, time.monotonic() - began)
        if batch.request.fail_fast and record["status"] != "ok":
            queue.clear()
    for case, attempt in queue:  # only when every worker is gone for good
        batch.fail(case.case_id, "failed", "no worker left to run it", "", 0.0, attempt=attempt, worker="driver")


def _submit(batch: Batch, queue: list, running: dict, pool: list, busy: set) -> None:
    for index, worker in enumerate(pool):
        while worker is not None and index not in busy and queue and \
                sum(1 for r in running.values() if r[2] == index) < IN_FLIGHT:
            case, attempt = queue.pop(0)
            lock = batch.outputs.lock(case.case_id)
            if not lock.acquire():
                batch.skip_locked(case.case_id)
                continue
            ref = worker.run.remote(case, batch.request, batch.outputs.output(case.case_id))
            running[ref] = (case, attempt, index, lock, time.monotonic())


def _wake(ray, ref, waking: dict, pool: list, max_retries: int) -> None:
    """A restarting worker answered (it is back) or failed again (ask again, or give it up)."""
    index, calls = waking.pop(ref)
    try:
        ray.get(ref)
    except ray.exceptions.RayActorError:
        if calls <= max_retries + 1:
            waking[pool[index].identity.remote()] = (index, calls + 1)
        else:
            pool[index] = None  # gone for good: its share goes to the others


def _settle(batch: Batch, case, record: dict, attempt: int, seconds: float) -> None:
    worker = record.pop("worker")
    if record["status"] == "ok":
        batch.finish(case.case_id, record, attempt=attempt, worker=worker)
    else:
        batch.fail(case.case_id, record["status"], record["error"], record["traceback"], seconds, attempt=attempt,
                   worker=worker)
