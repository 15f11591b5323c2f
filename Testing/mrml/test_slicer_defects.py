"""Defects of the Slicer module's review (../shared/reviews/slicer-module-review.md) that MRML can
show, reproduced on a real vtkMRMLScene from the review's scripts and fixed: D3, D8, D9, D19, D26."""

import numpy as np
import slicer
import vtk

from SegmentWithSAM2Lib.core.geometry import plan_slices
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.mrml.markups import points_of
from SegmentWithSAM2Lib.mrml.pipeline import prompts_from_nodes
from SegmentWithSAM2Lib.mrml.segments import segment_array, write_segment
from SegmentWithSAM2Lib.mrml.volumes import volume_from_node

from scene_helpers import add_transform, add_volume, exported_labelmap, rotation


def scene_with_volume():
    scene = slicer.vtkMRMLScene()
    return scene, add_volume(scene, np.zeros((5, 32, 40), np.int16), np.diag([1.0, 1.0, 2.0, 1.0]))


def test_d3_a_segmentation_made_by_a_node_selector_gets_display_nodes():
    scene, volume_node = scene_with_volume()
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")  # as qMRMLNodeFactory makes it
    assert segmentation.GetDisplayNode() is None
    mask = np.zeros((5, 32, 40), bool)
    mask[1:4, 8:20, 5:15] = True
    write_segment(segmentation, volume_node, volume_from_node(volume_node), mask, name="a", color=(1, 0, 0))
    assert segmentation.GetDisplayNode() is not None and segmentation.GetDisplayNode().GetVisibility()


def test_d8_a_segment_reads_back_in_place_under_a_parent_transform():
    scene, volume_node = scene_with_volume()
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentation.SetAndObserveTransformNodeID(add_transform(scene, rotation(2, 0, (10, 0, 0))).GetID())
    volume = volume_from_node(volume_node)
    mask = np.zeros((5, 32, 40), bool)
    mask[1:4, 8:20, 5:15] = True
    segment_id = write_segment(segmentation, volume_node, volume, mask, name="a", color=(1, 0, 0))
    assert np.array_equal(exported_labelmap(scene, segmentation, [segment_id], volume_node) > 0, mask)  # Slicer's own
    assert np.array_equal(segment_array(segmentation, segment_id, volume), mask)  # was 10 voxels off


def test_d9_a_cleared_or_unplaced_box_is_no_prompt():
    scene, _ = scene_with_volume()
    points = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    points.AddControlPoint(vtk.vtkVector3d(20.0, 16.0, 4.0))
    cleared = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode")
    cleared.SetCenter(20, 16, 4)
    cleared.SetSize(10, 10, 0)
    cleared.RemoveAllControlPoints()  # what the module's Clear does
    fresh = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode")  # "Box" clicked, nothing placed
    placed = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode")
    placed.SetCenter(20, 16, 4)
    placed.SetSize(10, 10, 2)
    for rois, boxes in (([cleared], 0), ([fresh], 0), ([cleared, placed], 1)):
        prompts = prompts_from_nodes("x", 1, positive=points, rois=rois)
        assert len(prompts["objects"][0]["boxes"]) == boxes and len(prompts["objects"][0]["points"]) == 1


def test_d26_hidden_and_unplaced_points_are_no_prompts():
    scene, _ = scene_with_volume()
    points = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    for x in (10.0, 20.0, 30.0):
        points.AddControlPoint(vtk.vtkVector3d(x, 16.0, 4.0))
    points.SetNthControlPointVisibility(1, False)
    points.UnsetNthControlPointPosition(2)  # being placed (or its position cleared)
    assert [p["position"][0] for p in points_of(points)] == [10.0]


def test_d19_a_2d_image_is_one_slice_whichever_way_it_faces():
    coronal = np.array([[-0.2, 0, 0, 0], [0, 0, 1, 0], [0, -0.2, 0, 0], [0, 0, 0, 1.0]])  # the review's t2d.py
    plan = plan_slices(Volume(np.zeros((1, 300, 250), np.int16), coronal), "auto")
    assert (plan.num_slices, plan.slice_shape, plan.view) == (1, (300, 250), "coronal")  # was 300 slices of 1x250
    sagittal = plan_slices(Volume(np.zeros((64, 64, 1), np.int16), np.eye(4)), "auto")
    assert (sagittal.num_slices, sagittal.slice_shape, sagittal.view) == (1, (64, 64), "sagittal")
    assert plan_slices(Volume(np.zeros((1, 512, 512), np.int16), np.diag([0.7, 0.7, 5.0, 1])), "auto").num_slices == 1
    assert plan_slices(Volume(np.zeros((1, 300, 250), np.int16), coronal), "axial").num_slices == 300  # asked for


def test_d16_positive_points_green_negative_red():
    from SegmentWithSAM2Lib.mrml.markups import NEGATIVE_COLOR, POSITIVE_COLOR, style_prompt_points

    scene, _ = scene_with_volume()
    positive, negative = (scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode") for _ in range(2))
    style_prompt_points(positive, True)
    style_prompt_points(negative, False)
    assert np.allclose(positive.GetDisplayNode().GetSelectedColor(), POSITIVE_COLOR)
    assert np.allclose(negative.GetDisplayNode().GetSelectedColor(), NEGATIVE_COLOR)
    assert POSITIVE_COLOR != NEGATIVE_COLOR


def test_d15_this_slice_is_where_the_user_placed_the_last_prompt():
    from SegmentWithSAM2Lib.mrml.markups import LastPlacedPoint
    from SegmentWithSAM2Lib.mrml.pipeline import slice_index_at

    scene, volume_node = scene_with_volume()
    positive, negative = (scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode") for _ in range(2))
    last = LastPlacedPoint()
    for node in (positive, negative, None):
        last.watch(node)
    assert last.position() is None
    positive.AddControlPoint(vtk.vtkVector3d(10.0, 16.0, 2.0))
    negative.AddControlPoint(vtk.vtkVector3d(30.0, 16.0, 6.0))  # placed last, in a coronal view say
    volume = volume_from_node(volume_node)
    assert last.position() == [30.0, 16.0, 6.0]
    assert slice_index_at(volume, "axial", last.position()) == 3 and slice_index_at(volume, "coronal", last.position()) == 16
    positive.AddControlPoint(vtk.vtkVector3d(12.0, 20.0, 8.0))
    assert last.position() == [12.0, 20.0, 8.0]
    negative.SetNthControlPointPosition(0, 31.0, 17.0, 4.0)  # moved
    assert last.position() == [31.0, 17.0, 4.0]
    last.forget()
    positive.AddControlPoint(vtk.vtkVector3d(1.0, 1.0, 1.0))
    assert last.position() is None


def test_d7_other_segments_are_never_resampled_by_a_write_on_another_grid():
    from SegmentWithSAM2Lib.mrml.segments import ensure_converter_rules, oriented_image

    scene = slicer.vtkMRMLScene()  # the review's t_sharedlayer.py
    coarse = add_volume(scene, np.zeros((4, 20, 20), np.int16), np.diag([2.0, 2.0, 3.0, 1.0]), name="coarse")
    reference = add_volume(scene, np.zeros((12, 80, 80), np.int16), np.diag([0.5, 0.5, 1.0, 1.0]), name="ref")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(reference)
    ensure_converter_rules()
    ring = np.zeros((12, 80, 80), np.uint8)
    ring[2:10, 20:60, 20:22] = 1  # painted 0.5 mm wide on the reference grid
    painted = segmentation.GetSegmentation().AddEmptySegment("", "painted", [0, 1, 0])
    image = oriented_image(ring, np.diag([0.5, 0.5, 1.0, 1.0]))
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    logic.SetBinaryLabelmapToSegment(image, segmentation, painted, logic.MODE_REPLACE, image.GetExtent(), False, [])
    before = exported_labelmap(scene, segmentation, [painted], reference) > 0
    mask = np.zeros((4, 20, 20), bool)
    mask[1:3, 2:5, 15:18] = True
    written = write_segment(segmentation, coarse, volume_from_node(coarse), mask, name="sam", color=(1, 0, 0))
    after = exported_labelmap(scene, segmentation, [painted], reference) > 0
    assert before.sum() == 640 and np.array_equal(before, after)  # was 640 -> 1476 voxels
    assert np.array_equal(exported_labelmap(scene, segmentation, [written], coarse) > 0, mask)  # SAM2's mask in place
