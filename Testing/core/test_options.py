"""One validator for every choice set: the choices, and "did you mean" when one is close; the
command line checks its options with the same lookup."""

import numpy as np
import pytest

from SegmentWithSAM2Lib.cli import main
from SegmentWithSAM2Lib.core.geometry import plan_slices
from SegmentWithSAM2Lib.core.model import pick_device
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error
from SegmentWithSAM2Lib.mrml.segments import write_segment
from SegmentWithSAM2Lib.options import AXES, look_up


def test_a_known_value_passes_and_a_near_miss_is_named():
    assert look_up("axial", AXES, "slice axis") == "axial"
    with pytest.raises(SegmentWithSAM2Error, match=r"unknown slice axis 'axail'; did you mean 'axial'\? \(use one of auto, axial"):
        look_up("axail", AXES, "slice axis")
    with pytest.raises(SegmentWithSAM2Error) as error:
        look_up("zzz", AXES, "slice axis")
    assert "did you mean" not in str(error.value) and "use one of auto, axial, coronal" in str(error.value)


@pytest.mark.parametrize("call, hint", [
    (lambda: plan_slices(Volume(np.zeros((2, 3, 4)), np.eye(4)), "sagital"), "did you mean 'sagittal'"),
    (lambda: pick_device("cuad"), "did you mean 'cuda'"),
    (lambda: write_segment(None, None, None, None, name="x", color=(1, 0, 0), overlap="overwite"),
     "did you mean 'overwrite'"),
])
def test_the_library_refuses_with_the_same_lookup(call, hint):
    with pytest.raises(SegmentWithSAM2Error, match=hint):
        call()


def test_the_command_line_uses_it_too(capsys):
    with pytest.raises(SystemExit):
        main(["segment", "v.nrrd", "--prompts", "p.json", "--output", "o.nii.gz", "--direction", "forwards"])
    assert "unknown direction 'forwards'; did you mean 'forward'?" in capsys.readouterr().err
