"""Trial rows about inputs: prompt files read strictly, images read as they are or refused, results reported."""

from __future__ import annotations

import numpy as np
import pytest

from cases import MODEL, Case, ct_volume, prompt_file, segment_case
from harness import check_row, registry

ROWS = {}
row = registry(ROWS)


POINT = {"position": [22, 24, 4]}


@row("043 a typo key 'postive'")
def _(tmp, env):
    return segment_case(tmp, objects=[{"name": "organ", "points": [{**POINT, "postive": False}]}],
                        message=r"'organ' point #1: unknown key 'postive'; did you mean 'positive'\?")


@row("044 'positive': 'false' (a string)")
def _(tmp, env):
    return segment_case(tmp, objects=[{"name": "organ", "points": [{**POINT, "positive": "false"}]}],
                        message=r"'organ' point #1: 'positive' must be true or false \(a JSON boolean\), got 'false'")


@row("064 colour 'red'")
def _(tmp, env):
    return segment_case(tmp, objects=[{"name": "organ", "color": "red", "points": [POINT]}],
                        message=r"object 'organ': 'color' must be three numbers from 0 to 1 .*got 'red'")


@row("065 colour [1, 0] to .seg.nrrd")
def _(tmp, env):
    return segment_case(tmp, output="out.seg.nrrd", objects=[{"name": "organ", "color": [1, 0], "points": [POINT]}],
                        message=r"object 'organ': 'color' must be three numbers from 0 to 1 .*got \[1, 0\]")


@row("066 colour [300, -5, 2]")
def _(tmp, env):
    return segment_case(tmp, objects=[{"name": "organ", "color": [300, -5, 2], "points": [POINT]}],
                        message=r"'color' must be three numbers from 0 to 1 .*got \[300, -5, 2\]")


@row("069 a non-ASCII name to .seg.nrrd")
def _(tmp, env):
    from SegmentWithSAM2Lib.io.labelmaps import segment_names

    case = segment_case(tmp, output="out.seg.nrrd", objects=[{"name": "Tumör 肿瘤", "points": [POINT]}])
    out = case.outputs.pop()
    case.status, case.check = 0, lambda: segment_names(out) == ["Tumör 肿瘤"]
    return case


@row("070 a name with a newline to .seg.nrrd")
def _(tmp, env):
    return segment_case(tmp, output="out.seg.nrrd", objects=[{"name": "liver\nsegment", "points": [POINT]}],
                        message=r"the name 'liver\\nsegment' holds control characters")


@row("073 a mask prompt with label 0")
def _(tmp, env):
    return _mask_case(tmp, {"file": "labels.nrrd", "label": 0, "slice": 4}, r"labels.nrrd: 'label' must be .*0 is the background")


@row("075 a mask prompt on slice 3.7")
def _(tmp, env):
    return _mask_case(tmp, {"file": "labels.nrrd", "label": 1, "slice": 3.7}, r"mask #1: 'slice' must be a whole slice index, got 3.7")


def _mask_case(tmp, mask, message):
    from SegmentWithSAM2Lib.io.labelmaps import write_labelmap
    from SegmentWithSAM2Lib.io.volume_files import read_volume

    volume = read_volume(ct_volume(tmp))
    write_labelmap((volume.array > 0).astype("uint8"), volume, tmp / "labels.nrrd")
    case = segment_case(tmp, objects=[{"name": "organ", "masks": [mask]}], message=message)
    case.inputs.append(tmp / "labels.nrrd")
    return case


@row("027 a truncated .nii.gz (half)")
def _(tmp, env):
    return _truncated(tmp, "ct.nii.gz", r"ct\.nii\.gz is cut short or damaged .*it was not read")


@row("028 a truncated .nii (half)")
def _(tmp, env):
    return _truncated(tmp, "ct.nii", r"ct\.nii is cut short: its header promises 37216 bytes, the file holds 18608")


def _truncated(tmp, name, message):
    image = ct_volume(tmp, name)
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    case = segment_case(tmp, message=message)
    case.argv[1], case.inputs[0] = str(image), image
    return case


@row("033 a DICOM series with 2 slices missing")
def _(tmp, env):
    import SimpleITK as sitk

    from dicom_series import write_ct_series

    image = sitk.ReadImage(str(ct_volume(tmp, shape=(10, 48, 48))))
    folder = write_ct_series(image, tmp / "series")
    files = sorted(folder.iterdir())
    for gone in files[4:6]:
        gone.unlink()
    case = segment_case(tmp, message=r"series is not evenly spaced: the slices at .* are 7.50 mm apart, the others "
                                     r"2.50 mm \(about 2 slice\(s\) missing\?\)")
    case.argv[1], case.inputs = str(folder), files[:4] + files[6:]
    return case


@row("006 a 1x64x64 volume sliced axially: an empty result")
def _(tmp, env):
    import SimpleITK as sitk

    image = tmp / "thin.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((64, 64, 1), 100, np.int16) * np.arange(64)[None, :, None]),
                    str(image))
    prompt = prompt_file(tmp, [{"name": "organ", "points": [{"position": [0, 30, 30]}]}])
    out = tmp / "out.nii.gz"
    return Case(["segment", str(image), "--prompts", str(prompt), "--output", str(out), *MODEL],
                status=0, message=r"warning: the result is empty: no object was segmented", inputs=[image, prompt])


@row("077 20 objects to .seg.nrrd, some empty")
def _(tmp, env):
    objects = [{"name": "organ", "points": [POINT]}] + [
        {"name": f"air {n}", "label": n, "points": [{"position": [2 + n, 2, 1]}]} for n in range(2, 21)]
    case = segment_case(tmp, output="out.seg.nrrd", objects=objects,
                        message=r"warning: object 'air \d+' \(label \d+\) is empty on every slice")
    case.status, case.outputs = 0, []
    return case


@pytest.mark.parametrize("name", sorted(ROWS))
def test_trial_row(name, tmp_path, monkeypatch):
    check_row(ROWS[name], tmp_path, monkeypatch)
