"""The batch in one process: every case checked first, the model loaded once (only if a case is
left to run), the next case read in a background thread while the current one propagates."""

from __future__ import annotations

import time
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..version import __version__
from .inputs import PromptSource, read_case
from .records import STATUSES, Outputs

RESUME_MODES = ("resume", "overwrite", "retry-failed")
SKIPPED = {"resume": "done already (output and sidecar verified)",
           "retry-failed": "did not fail before (--retry-failed runs only the failed cases)"}


@dataclass
class BatchRequest:
    settings: dict  # every option that changes the output (model, segment options, format, source)
    segment_options: dict  # keyword arguments of api.segment
    source: PromptSource = field(default_factory=PromptSource)
    resume: str = "resume"
    fail_fast: bool = False
    evaluate: bool = False
    seg_type: str = "binary"  # of a DICOM-SEG output

    def of_case(self, digests: dict) -> dict:
        """What a finished case must have been made from to be skipped."""
        return {**digests, "settings": self.settings, "version": __version__}


class Batch:
    def __init__(self, cases, outputs: Outputs, request: BatchRequest, on_event=lambda event: None):
        self.cases, self.outputs, self.request, self.on_event = cases, outputs, request, on_event
        self.final = {}  # case id -> the status of its last attempt
        self.scores = {}  # case id -> {object name: Dice, HD95, NSD} (--evaluate)
        self.started = time.monotonic()

    def check(self) -> tuple[list, list]:
        """(cases to run; cases that cannot run, as their CaseInputs).  Reads every case once."""
        todo, bad = [], []
        for case in self.cases:
            inputs = self._check_output(read_case(case, self.request.source))
            if inputs.status != "ok":
                bad.append(inputs)
            elif not self._done(case.case_id, inputs.digests):
                todo.append(case)
            else:
                self._record(case.case_id, "skipped", 0.0, error=SKIPPED[self.request.resume], worker="check")
        return todo, bad

    def _check_output(self, inputs):
        """An output that cannot be written (a DICOM-SEG of a NIfTI, a NIfTI of a sheared grid) fails now."""
        from ..errors import SegmentWithSAM2Error
        from ..io.labelmaps import check_output_path

        if inputs.status == "ok":
            try:
                check_output_path(self.outputs.output(inputs.case.case_id), inputs.volume, inputs=[inputs.case.image])
            except SegmentWithSAM2Error as error:
                inputs.status, inputs.error = "failed", f"cannot write its output: {error}"
        return inputs

    def _done(self, case_id: str, digests: dict) -> bool:
        """Not to run: trusted as done (resume), or not a failure of an earlier run (retry-failed)."""
        resume = self.request.resume
        if resume == "overwrite":
            return False
        if resume == "retry-failed":
            return not self.outputs.failed_before(case_id)
        return self.outputs.trusted(case_id, self.request.of_case(digests))

    def report_bad(self, bad: list) -> None:
        for inputs in bad:
            self.fail(inputs.case.case_id, inputs.status, inputs.error, "", 0.0, worker="check")

    def run(self, todo: list, model) -> None:
        """Each case in turn; a failure is that case's, the batch goes on (unless fail_fast)."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-read") as reader:
            ahead = reader.submit(read_case, todo[0], self.request.source) if todo else None
            for n in range(len(todo)):
                inputs = ahead.result()
                ahead = reader.submit(read_case, todo[n + 1], self.request.source) if n + 1 < len(todo) else None
                if not self.run_case(inputs, model) and self.request.fail_fast:
                    break

    def run_case(self, inputs, model) -> bool:
        case_id, began = inputs.case.case_id, time.monotonic()
        if inputs.status != "ok":  # the files changed since the check
            return self.fail(case_id, inputs.status, inputs.error, "", 0.0)
        lock = self.outputs.lock(case_id)
        if not lock.acquire():
            self.skip_locked(case_id)
            return True
        try:
            record = segment_case(inputs, model, self.request, self.outputs.output(case_id))
        except Exception as error:  # noqa: BLE001  (a case's failure is recorded; the batch goes on)
            return self.fail(case_id, "failed", f"{type(error).__name__}: {error}", traceback.format_exc(),
                              time.monotonic() - began)
        finally:
            lock.release()
        self.finish(case_id, record)
        return True

    def skip_locked(self, case_id) -> None:
        self._record(case_id, "skipped", 0.0, error="another process holds this case's lock")

    def finish(self, case_id, record, **attempt) -> None:
        """A case done: its sidecar (after its output), then its manifest line."""
        self.outputs.write_sidecar(case_id, record)
        if "scores" in record:
            self.scores[case_id] = record["scores"]
        self._record(case_id, "ok", record["seconds"], warnings=record["warnings"], **attempt)

    def fail(self, case_id, status, error, details, seconds, **attempt) -> bool:
        self.outputs.write_error(case_id, (details or error) + "\n")
        self.outputs.write_sidecar(case_id, {"case": case_id, "status": status, "error": error, "version": __version__})
        self._record(case_id, status, seconds, error=error, **attempt)
        return False

    def _record(self, case_id, status, seconds, error="", warnings=(), attempt=1, worker="embedded") -> None:
        self.final[case_id] = status
        line = {"case": case_id, "status": status, "error": error, "attempt": attempt, "worker": worker,
                "seconds": round(seconds, 3), "warnings": list(warnings)}
        self.outputs.append_manifest(line)
        self.on_event({"event": "case", **line, "totals": self.totals(),
                       "elapsed": round(time.monotonic() - self.started, 3)})

    def totals(self) -> dict:
        """Cases by the status of their last attempt (a retried case counts once)."""
        counts = dict.fromkeys(STATUSES, 0)
        for status in self.final.values():
            counts[status] += 1
        return counts

    def summary(self) -> dict:
        summary = {"cases": len(self.cases), **self.totals(), "seconds": round(time.monotonic() - self.started, 3),
                   "version": __version__}
        if self.scores:
            dices = [s["dice"] for objects in self.scores.values() for s in objects.values()]
            summary["evaluation"] = {"mean_dice": round(float(np.mean(dices)), 4), "cases": self.scores}
        return summary


def segment_case(inputs, model, request: BatchRequest, output) -> dict:
    """Segment one case and write its output (complete or absent); its sidecar record, with the
    digests of the files as read for this run (not as checked earlier: they may have changed)."""
    from .. import api

    began = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = api.segment(model, inputs.volume, inputs.prompts, **request.segment_options)
    said = [str(w.message) for w in caught]  # the engine's own warnings name empty objects
    api.write_result(result, output, overwrite=True, seg_type=request.seg_type)
    record = {"case": inputs.case.case_id, "status": "ok", "request": request.of_case(inputs.digests),
              "image": str(inputs.case.image), "model": model.model_id, "weights": model.weights,
              "device": str(model.device), "result_settings": result.settings,
              "seconds": round(time.monotonic() - began, 3), "slices": result.slices_processed,
              "warnings": said, "version": __version__}
    if request.evaluate and inputs.labels is not None:
        record["scores"] = object_scores(result, inputs.labels)
    return record


def object_scores(result, labels) -> dict:
    """Dice, HD95 and NSD per object against the labelmap its prompts came from (evaluate's metrics)."""
    from ..training.evaluation import scores

    spacing_kji = tuple(float(s) for s in result.volume.spacing[::-1])
    truth = np.asarray(labels.array)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # monai's notices about its own API
        return {obj.name: {"label": obj.label, **scores(result.labelmap == obj.label, truth == obj.label, spacing_kji)}
                for obj in result.objects}
