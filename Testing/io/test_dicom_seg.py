"""DICOM-SEG output (highdicom), read back with highdicom and pydicom: Segmentation Storage, one
segment per non-empty object numbered 1..N, its codes, same Study and Frame of Reference, a new
Series; and every frame equal to the labelmap where the frame lies, found by position through
SimpleITK's geometry, for a series stored against its slice order and one whose column direction
is negative."""

from __future__ import annotations

import json

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from SegmentWithSAM2Lib import api
from SegmentWithSAM2Lib.core.prompts import ObjectInputs
from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error
from SegmentWithSAM2Lib.io.labelmaps import check_output_path, write_labelmap
from dicom_series import write_ct_series

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LIVER = {"category": ["SCT", "123037004", "Anatomical Structure"], "type": ["SCT", "10200004", "Liver"]}
TAGS = {"model": "micro", "weights": "ab" * 32, "version": "0.1.0"}
GRIDS = {"stored in reverse order": ((1, 0, 0, 0, 1, 0, 0, 0, 1), True),
         "negative column direction": ((1, 0, 0, 0, -1, 0, 0, 0, -1), False)}


def series(folder, direction, reverse):
    array = np.random.default_rng(0).integers(-500, 500, (6, 20, 24)).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.8, 2.0))
    image.SetOrigin((-10.0, 20.0, 30.0))
    image.SetDirection(direction)
    return write_ct_series(image, folder, reverse_order=reverse), image


def labelmap_of(shape):
    labels = np.zeros(shape, np.uint8)
    labels[1:4, 5:12, 3:9] = 7  # an asymmetric block: a flipped frame would not match
    labels[4, 2:4, 10:20] = 2
    return labels


def expected_frame(labels, image, ds, label):
    """The labelmap at every pixel of source instance ``ds``, found through SimpleITK's geometry."""
    position = np.asarray(ds.ImagePositionPatient, float)
    cosines = np.asarray(ds.ImageOrientationPatient, float)
    row_step, col_step = (float(v) for v in ds.PixelSpacing)
    frame = np.zeros((ds.Rows, ds.Columns), bool)
    for r in range(ds.Rows):
        for c in range(ds.Columns):
            point = position + c * col_step * cosines[:3] + r * row_step * cosines[3:]
            i, j, k = image.TransformPhysicalPointToIndex(point.tolist())
            frame[r, c] = labels[k, j, i] == label
    return frame


@pytest.fixture(params=list(GRIDS))
def written(request, tmp_path):
    direction, reverse = GRIDS[request.param]
    folder, image = series(tmp_path / "series", direction, reverse)
    volume = api.read_volume(folder)
    labels = labelmap_of(volume.array.shape)
    objects = [ObjectInputs("liver", 7, (1.0, 0.0, 0.0), terminology=LIVER), ObjectInputs("lesion", 2, (0.0, 1.0, 0.0)),
               ObjectInputs("absent", 9, (0.0, 0.0, 1.0))]
    path = write_labelmap(labels, volume, tmp_path / "out.dcm", objects, TAGS)
    sources = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(p) for p in folder.iterdir())}
    return path, labels, image, sources


def test_the_seg_is_a_segmentation_of_the_source_study_in_a_new_series(written):
    path, _, _, sources = written
    seg = pydicom.dcmread(path)
    source = next(iter(sources.values()))
    assert seg.SOPClassUID == SEGMENTATION_STORAGE and seg.SegmentationType == "BINARY"
    assert seg.StudyInstanceUID == source.StudyInstanceUID and seg.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert seg.SeriesInstanceUID != source.SeriesInstanceUID and seg.SOPInstanceUID not in sources


def test_segments_are_numbered_1_to_n_with_names_labels_codes_and_the_model(written):
    segments = pydicom.dcmread(written[0]).SegmentSequence
    assert [s.SegmentNumber for s in segments] == [1, 2]  # the empty object is left out
    assert [s.SegmentLabel for s in segments] == ["liver", "lesion"]
    assert [s.TrackingID for s in segments] == ["label 7", "label 2"]
    type_codes = [(s.SegmentedPropertyTypeCodeSequence[0].CodeValue, s.SegmentedPropertyTypeCodeSequence[0].CodeMeaning)
                  for s in segments]
    assert type_codes == [("10200004", "Liver"), ("85756007", "Tissue")]
    assert segments[0].SegmentedPropertyCategoryCodeSequence[0].CodeValue == "123037004"
    assert {s.SegmentAlgorithmType for s in segments} == {"SEMIAUTOMATIC"}
    algorithm = segments[0].SegmentationAlgorithmIdentificationSequence[0]
    assert "micro" in algorithm.AlgorithmName and "ab" * 32 in str(algorithm.AlgorithmParameters)


def test_every_frame_equals_the_labelmap_at_its_source_instance(written):
    path, labels, image, sources = written
    seg = pydicom.dcmread(path)
    frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    seen = set()
    for f, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = group.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        ds = sources[uid]
        assert np.allclose(group.PlanePositionSequence[0].ImagePositionPatient, ds.ImagePositionPatient)
        assert np.array_equal(frames[f].astype(bool), expected_frame(labels, image, ds, (7, 2)[number - 1]))
        seen.add((uid, number))
    wanted = {(uid, n) for uid, ds in sources.items() for n, label in ((1, 7), (2, 2))
              if expected_frame(labels, image, ds, label).any()}
    assert seen == wanted  # empty frames left out, none missing


def test_highdicom_reads_the_same_masks_by_source_instance(written):
    path, labels, image, sources = written
    seg = hd.seg.segread(path)
    assert seg.number_of_segments == 2
    uids = list(sources)
    pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=[1, 2], assert_missing_frames_are_empty=True)
    for n, uid in enumerate(uids):
        for s, label in enumerate((7, 2)):
            assert np.array_equal(pixels[n, :, :, s].astype(bool), expected_frame(labels, image, sources[uid], label))


def test_labelmap_type_on_request(tmp_path):
    folder, _ = series(tmp_path / "series", GRIDS["negative column direction"][0], False)
    volume = api.read_volume(folder)
    objects = [ObjectInputs("liver", 7, (1.0, 0.0, 0.0)), ObjectInputs("lesion", 2, (0.0, 1.0, 0.0))]
    path = write_labelmap(labelmap_of(volume.array.shape), volume, tmp_path / "l.dcm", objects, TAGS, seg_type="labelmap")
    assert pydicom.dcmread(path).SegmentationType == "LABELMAP"


def test_a_dicom_seg_of_a_non_dicom_input_is_refused_before_any_work(tmp_path, oblique_volume):
    with pytest.raises(SegmentWithSAM2Error, match="DICOM-SEG can only be written for a DICOM series input"):
        check_output_path(tmp_path / "x.dcm", oblique_volume)


def test_a_series_is_chosen_by_its_uid(tmp_path):
    image = sitk.GetImageFromArray(np.arange(4 * 8 * 8, dtype=np.int16).reshape(4, 8, 8))
    write_ct_series(image, tmp_path / "mixed", series=1, prefix="a")
    write_ct_series(image[:, :, :3], tmp_path / "mixed", series=2, prefix="b")
    uid = "1.2.826.0.1.3680043.2.1125.2.2"
    assert api.read_volume(tmp_path / "mixed", series=uid).array.shape == (3, 8, 8)
    with pytest.raises(SegmentWithSAM2Error, match="holds no series 1.2.3; it holds"):
        api.read_volume(tmp_path / "mixed", series="1.2.3")


def test_terminology_goes_into_the_seg_nrrd_as_slicers_terminology_entry(tmp_path, oblique_volume):
    import slicerio

    prompts = {"space": "IJK", "objects": [{"name": "liver", "points": [{"position": [5, 5, 3]}], "terminology":
               "Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure"
               "~SCT^10200004^Liver~^^~~^^~^^"}]}
    from SegmentWithSAM2Lib.core.prompts import check_prompts, place_prompts  # noqa: F401
    from SegmentWithSAM2Lib.core.geometry import plan_slices
    from SegmentWithSAM2Lib.core.inplane import InPlaneMap

    plan = plan_slices(oblique_volume, "auto")
    (obj,) = place_prompts(prompts, oblique_volume, plan, InPlaneMap.fit(plan.slice_shape, plan.pixel_spacing, 64))
    labels = np.zeros(oblique_volume.array.shape, np.uint8)
    labels[2:4, 3:9, 4:10] = 1
    path = write_labelmap(labels, oblique_volume, tmp_path / "s.seg.nrrd", [obj], TAGS)
    (segment,) = slicerio.read_segmentation(str(path))["segments"]
    assert segment["terminology"]["type"] == ["SCT", "10200004", "Liver"]
    assert "TerminologyEntry:Segmentation category and type" in path.read_bytes().partition(b"\n\n")[0].decode()


@pytest.mark.parametrize("value, message", [
    ({"type": ["SCT", "1", "x"]}, "terminology needs 'category'"),
    ({"category": ["SCT", "1"], "type": ["SCT", "1", "x"]}, "must be three texts"),
    ({"category": ["SCT", "1", "x"], "type": ["SCT", "1", "x"], "kind": 1}, "unknown key 'kind'"),
    (5, "must be a Slicer TerminologyEntry string"),
])
def test_a_malformed_terminology_is_refused_with_what_it_needs(value, message, oblique_volume):
    from SegmentWithSAM2Lib.core.prompts import check_prompts

    prompts = {"space": "IJK", "objects": [{"points": [{"position": [5, 5, 3]}], "terminology": value}]}
    with pytest.raises(SegmentWithSAM2Error, match=message):
        check_prompts(oblique_volume, prompts)
    json.dumps(prompts)  # the prompt file form
