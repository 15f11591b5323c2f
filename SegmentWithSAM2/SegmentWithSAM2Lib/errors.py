"""Errors the library raises on purpose: each says what is wrong and what to do."""


class SegmentWithSAM2Error(ValueError):
    """Bad input or a situation the user can fix; the message is meant for them."""


class CheckpointError(SegmentWithSAM2Error):
    """A checkpoint that is missing, unreadable, unsafe, or belongs to another config."""


class Cancelled(Exception):
    """The user cancelled a run; nothing partial was written."""
