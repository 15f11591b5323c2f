"""A case's inputs read and checked: its volume, its prompts from their source, their digests.
Problems are returned as the case's status (``failed`` for an unreadable image,
``invalid-prompts`` for prompts that do not fit), so every bad case can be listed at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.prompts import check_prompts
from ..errors import SegmentWithSAM2Error
from ..io.prompt_file import read_prompt_file
from ..io.volume_files import read_volume
from .cases import Case
from .prompt_sources import prompts_from_boxes, prompts_from_labels
from .records import path_digest, prompts_digest


@dataclass(frozen=True)
class PromptSource:
    """Where prompts come from when a case has no prompt file of its own."""

    boxes: dict = field(default_factory=dict)  # case id -> rows of the boxes CSV
    from_labels: str = "box"
    label_values: frozenset | None = None  # the label values to prompt from; None: all
    axis: str = "auto"


@dataclass
class CaseInputs:
    case: Case
    volume: object = None
    prompts: dict | None = None
    labels: object = None  # the labelmap volume, when it was the prompt source
    digests: dict = field(default_factory=dict)
    status: str = "ok"
    error: str = ""


def read_case(case: Case, source: PromptSource) -> CaseInputs:
    inputs = CaseInputs(case)
    try:
        inputs.volume = read_volume(case.image, series=case.series)
        inputs.digests["image_sha256"] = path_digest(case.image)
    except (SegmentWithSAM2Error, OSError) as error:
        return _problem(inputs, "failed", f"cannot read the image: {error}")
    try:
        inputs.prompts = _prompts_of(inputs, source)
        check_prompts(inputs.volume, inputs.prompts, source.axis)
    except (SegmentWithSAM2Error, OSError) as error:
        return _problem(inputs, "invalid-prompts", str(error))
    inputs.digests["prompts_sha256"] = prompts_digest(inputs.prompts)
    return inputs


def _problem(inputs: CaseInputs, status: str, error: str) -> CaseInputs:
    inputs.status, inputs.error, inputs.volume, inputs.prompts = status, error, None, None
    return inputs


def _prompts_of(inputs: CaseInputs, source: PromptSource) -> dict:
    case = inputs.case
    if case.prompts is not None:
        return read_prompt_file(case.prompts, inputs.volume)
    if case.case_id in source.boxes:
        return prompts_from_boxes(source.boxes[case.case_id], f"boxes of case {case.case_id}")
    if case.labels is not None:
        inputs.labels = read_volume(case.labels)
        return prompts_from_labels(inputs.labels, inputs.volume, source.from_labels, source.label_values, source.axis)
    raise SegmentWithSAM2Error(f"case {case.case_id} has no prompts: no prompt file, box rows or labelmap for it")
