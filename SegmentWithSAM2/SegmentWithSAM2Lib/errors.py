"""Every exception and warning the library raises on purpose.

An error says what is wrong (``problem``) and, where there is one, what would fix it
(``remedy``), in neutral terms: the command line phrases a remedy as a flag, the Slicer module as
a widget or button (``cli.remedies`` and ``mrml.worker``), so no front end tells its user to do
what only another front end can.  ``str(error)`` is the neutral wording, for the Python API.
"""

from __future__ import annotations

from dataclasses import dataclass

# action -> how to say it without naming a front end; {subject} is the model id, path or values
NEUTRAL_REMEDIES = {
    "download": "download model {subject} first",
    "choose_model": "choose one of the known models ({subject}), or a checkpoint file with its config",
    "give_checkpoint": "give a checkpoint file with its config",
    "choose_config": "use the config {subject} with this checkpoint",
    "use_cpu": "run on the CPU",
    "give_window": "give an explicit window as CENTER,WIDTH",
    "restore_file": "restore {subject} from the project's files (reinstall, or git checkout -- model_zoo/)",
    "download_again": "delete {subject} and download it again",
    "retry": "run it again; the download resumes",
    "go_offline": "check the network or proxy settings, or use offline mode with a file already in the cache",
    "choose_precision": "use bf16 or fp32",
    "install_package": "install it: {subject}",
}


@dataclass(frozen=True)
class Remedy:
    """What would fix an error: an action from NEUTRAL_REMEDIES and what it applies to."""

    action: str
    subject: str = ""

    def neutral(self) -> str:
        return NEUTRAL_REMEDIES[self.action].format(subject=self.subject)


class SegmentWithSAM2Error(ValueError):
    """Bad input or a situation the user can fix; the message is meant for them."""

    def __init__(self, problem: str, remedy: Remedy | None = None):
        self.problem, self.remedy = problem, remedy
        super().__init__(problem if remedy is None else f"{problem}; {remedy.neutral()}")

    def phrased(self, remedies: dict) -> str:
        """The problem with the remedy in a front end's words (``remedies``: action -> template)."""
        if self.remedy is None:
            return self.problem
        template = remedies.get(self.remedy.action, NEUTRAL_REMEDIES[self.remedy.action])
        return f"{self.problem}; {template.format(subject=self.remedy.subject)}"


class CheckpointError(SegmentWithSAM2Error):
    """A checkpoint that is missing, unreadable, unsafe, or belongs to another config."""


class DownloadError(SegmentWithSAM2Error):
    """A download that failed, or a cached file that does not match its checksum."""


class Cancelled(Exception):
    """The user cancelled a run or a download; nothing partial was written (a download keeps its
    part file to resume from)."""


class EmptyResultWarning(UserWarning):
    """A result that is empty for an object (or wholly), or floods most of the volume."""


class RandomWeightsWarning(UserWarning):
    """A model runs with random weights: its masks are meaningless (tests and benchmarks only)."""
