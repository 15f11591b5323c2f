"""Slicer 5.10 (Python >= 3.10) is the minimum, said in plain words to a user of an older one."""

from SegmentWithSAM2Lib.mrml.slicer_version import unsupported


def test_5_10_and_later_run():
    assert unsupported((5, 10, 0), (3, 12, 7)) is None and unsupported((6, 0), (3, 13)) is None


def test_older_slicers_are_told_what_to_install():
    message = unsupported((5, 8, 1), (3, 9, 10))
    assert "needs 3D Slicer 5.10 or later" in message and "this is Slicer 5.8 with Python 3.9" in message
    assert "download.slicer.org" in message and "--" not in message
    assert unsupported((5, 10), (3, 9)) is not None  # a custom build on an old Python
