"""The Python API: one model, volumes given as paths, SimpleITK images or (array, matrix)."""

import numpy as np
import pytest
import SimpleITK as sitk

import SegmentWithSAM2Lib
from SegmentWithSAM2Lib import segment, write_result
from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error
from SegmentWithSAM2Lib.io.volume_files import ijk_to_lps_of

from test_images import oblique_image

PROMPTS = {"space": "IJK", "objects": [{"name": "lesion", "label": 2,
                                        "boxes": [{"corner1": [10, 8, 2], "corner2": [30, 28, 2]}]}]}


def test_paths_images_and_arrays_give_the_same_labelmap(tmp_path, medsam2_random):
    image = oblique_image(shape_kji=(4, 40, 48))
    sitk.WriteImage(image, str(tmp_path / "ct.nrrd"))
    matrix = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ijk_to_lps_of(image)
    kwargs = dict(window="40,400", axis="k", slice_range=(1, 3))
    results = [segment(medsam2_random, source, PROMPTS, **kwargs)
               for source in (tmp_path / "ct.nrrd", str(tmp_path / "ct.nrrd"), image,
                              (sitk.GetArrayFromImage(image), matrix))]
    for result in results[1:]:
        np.testing.assert_array_equal(result.labelmap, results[0].labelmap)
    assert results[0].settings["window"][:2] == [-160.0, 240.0] and results[0].settings["slice_axis"] == "k"
    write_result(results[0], tmp_path / "out.seg.nrrd")
    assert (tmp_path / "out.seg.nrrd").stat().st_size > 0


def test_public_names_load_lazily_and_bad_volumes_are_named():
    assert callable(SegmentWithSAM2Lib.load_model) and callable(SegmentWithSAM2Lib.read_volume)
    with pytest.raises(AttributeError):
        SegmentWithSAM2Lib.not_a_function
    with pytest.raises(SegmentWithSAM2Error, match="cannot use list as a volume"):
        segment(None, [1, 2, 3], PROMPTS)


def test_importing_the_package_loads_no_model_code():
    import subprocess
    import sys

    code = "import sys, SegmentWithSAM2Lib; print(sorted(m for m in ('torch', 'sam2', 'SimpleITK') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_prompts_are_checked_against_a_volume_without_a_model():
    image = oblique_image(shape_kji=(4, 40, 48))
    SegmentWithSAM2Lib.check_prompts(image, PROMPTS, axis="k")  # fits: no error
    across = {"space": "IJK", "objects": [{"name": "lesion", "boxes": [{"corner1": [10, 8, 1], "corner2": [30, 28, 3]}]}]}
    with pytest.raises(SegmentWithSAM2Error, match="both corners must be on one slice"):
        SegmentWithSAM2Lib.check_prompts(image, across, axis="k")
    far = {"space": "IJK", "objects": [{"name": "lesion", "points": [{"position": [10, 8, 9]}]}]}
    with pytest.raises(SegmentWithSAM2Error, match="'lesion' point #1 .* is outside the volume"):
        SegmentWithSAM2Lib.check_prompts(image, far)
