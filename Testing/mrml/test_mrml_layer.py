"""The mrml layer against a real vtkMRMLScene (slicer-core): transforms, markups, segments,
overlap policy, provenance, .seg.nrrd round trip, and bad input that leaves the scene as it was."""

import hashlib

import numpy as np
import pytest
import slicer
import vtk

from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession
from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error
from SegmentWithSAM2Lib.mrml.pipeline import prompts_from_nodes, segment_volume_node
from SegmentWithSAM2Lib.mrml.segments import read_tags, segment_array, write_segment
from SegmentWithSAM2Lib.mrml.volumes import volume_from_node

from scene_helpers import add_points, add_transform, add_volume, exported_labelmap, rotation

SHAPE = (5, 32, 40)  # k, j, i
IJK_TO_RAS = rotation(2, 25, (10, -20, 5)) @ np.diag([0.7, 1.1, 2.5, 1.0])  # oblique, anisotropic
VOLUME_PARENT = rotation(0, 10, (3, 4, -6))
MARKUPS_PARENT = rotation(1, -30, (-8, 2, 1))
TARGET_IJK = (20, 14, 2)


@pytest.fixture
def scene():
    scene = slicer.vtkMRMLScene()
    rng = np.random.default_rng(0)
    array = rng.normal(40, 60, SHAPE).astype(np.int16)
    volume_node = add_volume(scene, array, IJK_TO_RAS, VOLUME_PARENT)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "segmentation")
    return scene, volume_node, segmentation


def world_of(ijk):
    return (VOLUME_PARENT @ IJK_TO_RAS @ np.append(ijk, 1.0))[:3]


def run(model, volume_node, segmentation, prompts, **kw):
    kw.setdefault("window", "40,400")
    kw.setdefault("auto_stop", False)
    return segment_volume_node(model, volume_node, segmentation, prompts, **kw)


def test_transformed_markups_land_on_their_voxel_and_segments_equal_the_engine(scene, medsam2_random):
    scene, volume_node, segmentation = scene
    points = add_points(scene, [world_of(TARGET_IJK)], MARKUPS_PARENT)
    prompts = prompts_from_nodes("lesion", 1, positive=points)
    volume = volume_from_node(volume_node)
    np.testing.assert_allclose(volume.ras_to_ijk(prompts["objects"][0]["points"][0]["position"])[0], TARGET_IJK,
                               atol=1e-6)
    session = VolumeSession(medsam2_random, volume, window="40,400")
    placed = session.place(prompts)[0]
    s, r, c = session.plan.ijk_to_slice(TARGET_IJK)[0]
    (x, y), = placed.slices[int(s)].points
    np.testing.assert_allclose([y, x], session.inplane.slice_to_frame([r, c])[0], atol=1e-6)
    ids = run(medsam2_random, volume_node, segmentation, prompts)
    expected = session.propagate(prompts, PropagationOptions(auto_stop=False)).labelmap
    assert expected.any()
    np.testing.assert_array_equal(exported_labelmap(scene, segmentation, ids, volume_node) > 0, expected == 1)
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 1


def test_keep_others_replace_and_the_volume_stays_bit_identical(scene, medsam2_random):
    scene, volume_node, segmentation = scene
    digest = hashlib.sha256(slicer.util.arrayFromVolume(volume_node).tobytes()).hexdigest()
    volume = volume_from_node(volume_node)
    other = np.zeros(SHAPE, bool)
    other[:, 5:25, 5:30] = True
    other_id = write_segment(segmentation, volume_node, volume, other, name="other", color=(0, 1, 0))
    target = write_segment(segmentation, volume_node, volume, np.zeros(SHAPE, bool), name="target", color=(1, 0, 0))
    prompts = prompts_from_nodes("target", 1, positive=add_points(scene, [world_of(TARGET_IJK)]))
    ids = run(medsam2_random, volume_node, segmentation, prompts, segment_ids={1: target}, overlap="keep_others")
    assert ids == [target] and list(segmentation.GetSegmentation().GetSegmentIDs()) == [other_id, target]
    np.testing.assert_array_equal(segment_array(segmentation, other_id, volume), other)
    written = segment_array(segmentation, target, volume)
    assert written.any() and not (written & other).any()
    assert hashlib.sha256(slicer.util.arrayFromVolume(volume_node).tobytes()).hexdigest() == digest
    run(medsam2_random, volume_node, segmentation, prompts, segment_ids={1: target}, overlap="overwrite")
    taken = segment_array(segmentation, target, volume)
    assert (taken & other).any() and not (segment_array(segmentation, other_id, volume) & taken).any()


def test_provenance_tags_parse_back_and_seg_nrrd_round_trips(scene, medsam2_random, tmp_path):
    scene, volume_node, segmentation = scene
    prompts = prompts_from_nodes("lesion", 1, color=(0.2, 0.4, 0.6), positive=add_points(scene, [world_of(TARGET_IJK)]))
    segment_id, = run(medsam2_random, volume_node, segmentation, prompts)
    tags = read_tags(segmentation.GetSegmentation().GetSegment(segment_id))
    assert tags["model"] == "medsam2-latest" and tags["weights"] == "random (seed 0)"
    assert tags["window"][:2] == [-160.0, 240.0] and tags["direction"] == "both" and tags["range"] == [0, 4]
    assert tags["prompts"][0]["points"][0]["positive"] is True and "version" in tags and "date" in tags
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(tmp_path / "lesion.seg.nrrd"))
    assert storage.WriteData(segmentation)
    loaded = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "loaded")
    assert storage.ReadData(loaded)
    volume = volume_from_node(volume_node)
    reloaded = loaded.GetSegmentation().GetSegment(segment_id)
    assert reloaded.GetName() == "lesion" and read_tags(reloaded) == tags
    np.testing.assert_array_equal(segment_array(loaded, segment_id, volume), segment_array(segmentation, segment_id, volume))


def scene_state(scene, segmentation):
    return scene.GetNumberOfNodes(), segmentation.GetSegmentation().GetNumberOfSegments()


def test_bad_input_is_refused_and_the_scene_unchanged(scene, medsam2_random):
    scene, volume_node, segmentation = scene
    good = prompts_from_nodes("lesion", 1, positive=add_points(scene, [world_of(TARGET_IJK)]))
    vector = scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode", "rgb")
    slicer.util.updateVolumeFromArray(vector, np.zeros((3, 8, 8, 3), np.uint8))
    warped = add_volume(scene, np.zeros(SHAPE, np.int16) + np.arange(40, dtype=np.int16), IJK_TO_RAS, name="warped")
    grid = scene.AddNewNodeByClass("vtkMRMLGridTransformNode", "warp")
    warped.SetAndObserveTransformNodeID(grid.GetID())
    outside = prompts_from_nodes("lesion", 1, positive=add_points(scene, [world_of((400, 10, 2))], name="far"))
    empty = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "empty")
    before = scene_state(scene, segmentation)
    cases = [(None, good, "no input volume"), (vector, good, "3 components"),
             (warped, good, "non-linear transform"), (volume_node, outside, "outside the volume")]
    for node, prompts, message in cases:
        with pytest.raises(SegmentWithSAM2Error, match=message):
            run(medsam2_random, node, segmentation, prompts)
        assert scene_state(scene, segmentation) == before
    with pytest.raises(SegmentWithSAM2Error, match="no prompts for 'lesion'"):
        prompts_from_nodes("lesion", 1, positive=empty)


def test_roi_box_under_a_transform_becomes_a_box_on_its_centre_slice(scene, medsam2_random):
    scene, volume_node, _ = scene
    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
    roi.SetAndObserveTransformNodeID(add_transform(scene, MARKUPS_PARENT).GetID())
    centre_local = np.linalg.inv(MARKUPS_PARENT) @ np.append(world_of(TARGET_IJK), 1.0)
    roi.SetCenter(vtk.vtkVector3d(*centre_local[:3]))
    roi.SetSize(12.0, 9.0, 0.5)
    prompts = prompts_from_nodes("lesion", 1, rois=[roi])
    session = VolumeSession(medsam2_random, volume_from_node(volume_node), window="40,400")
    placed = session.place(prompts)[0]
    assert list(placed.slices) == [TARGET_IJK[2]]
    x0, y0, x1, y1 = placed.slices[TARGET_IJK[2]].box
    _, r, c = session.plan.ijk_to_slice(TARGET_IJK)[0]
    fy, fx = session.inplane.slice_to_frame([r, c])[0]
    assert x0 < fx < x1 and y0 < fy < y1


def test_a_segment_on_a_slice_is_a_mask_prompt(scene, medsam2_random):
    scene, volume_node, segmentation = scene
    from SegmentWithSAM2Lib.mrml.segments import segment_as_mask_prompt

    volume = volume_from_node(volume_node)
    seed = np.zeros(SHAPE, bool)
    seed[2, 8:24, 10:30] = True
    seed_id = write_segment(segmentation, volume_node, volume, seed, name="seed", color=(0, 0, 1))
    prompts = prompts_from_nodes("from seed", 1, masks=[segment_as_mask_prompt(segmentation, seed_id, volume, 2)])
    ids = run(medsam2_random, volume_node, segmentation, prompts, slice_range=(2, 2), postprocess=False)
    np.testing.assert_array_equal(segment_array(segmentation, ids[0], volume), seed)  # sam2 passes a mask prompt through
    with pytest.raises(SegmentWithSAM2Error, match="segment 'nope' not found"):
        segment_as_mask_prompt(segmentation, "nope", volume, 2)


def test_a_segmentation_with_another_reference_geometry_stores_the_segment_on_it(scene):
    """As the Segment Editor does (issue 16, D7): the mask is resampled (nearest neighbour) onto the
    segmentation's own reference geometry, which is left as it was; other segments then never are."""
    scene, volume_node, segmentation = scene
    coarse = add_volume(scene, np.zeros((3, 16, 20), np.int16), np.diag([1.4, 2.2, 5.0, 1.0]), name="coarse")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(coarse)
    before = segmentation.GetSegmentation().GetConversionParameter("Reference image geometry")
    volume = volume_from_node(volume_node)
    mask = np.zeros(SHAPE, bool)
    mask[1:4, 8:24, 10:30] = True
    segment_id = write_segment(segmentation, volume_node, volume, mask, name="x", color=(1, 0, 0))
    stored = slicer.vtkOrientedImageData()
    slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(segmentation, segment_id, stored,
                                                                                   False)
    lattice = vtk.vtkMatrix4x4()
    stored.GetImageToWorldMatrix(lattice)
    np.testing.assert_allclose([[lattice.GetElement(r, c) for c in range(4)] for r in range(4)],
                               np.diag([1.4, 2.2, 5.0, 1.0]), atol=1e-9)  # the coarse grid, not the volume's
    on_coarse = exported_labelmap(scene, segmentation, [segment_id], coarse) > 0
    def centre(m, ijk_to_ras):  # world RAS centroid of a [k, j, i] mask
        return (ijk_to_ras @ np.append(np.argwhere(m)[:, ::-1].mean(axis=0), 1.0))[:3]
    assert on_coarse.any()
    np.testing.assert_allclose(centre(on_coarse, np.diag([1.4, 2.2, 5.0, 1.0])), centre(mask, volume.ijk_to_ras),
                               atol=2.5)  # within a coarse voxel
    assert segmentation.GetSegmentation().GetConversionParameter("Reference image geometry") == before
