"""The SAM2 Segment Editor effect's logic without Qt (mrml.editing, mrml.editor_writes): prompts per
segment and slice, a preview per click from cached features, writes through a real
vtkSlicerSegmentEditorLogic with a real vtkMRMLSegmentEditorNode (masking, overwrite, undo),
several segments in one pass, corrections re-propagated from their slice, and cancel."""

import numpy as np
import pytest
import slicer

from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.errors import Cancelled
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.mrml.editing import EditSession
from SegmentWithSAM2Lib.mrml.editor_writes import EditorWrites
from SegmentWithSAM2Lib.mrml.prompt_book import PromptBook
from SegmentWithSAM2Lib.mrml.segments import ensure_converter_rules, segment_array
from SegmentWithSAM2Lib.mrml.volumes import volume_from_node

from scene_helpers import add_volume, vtk_matrix

SHAPE = (24, 64, 64)  # k, j, i
IJK_TO_RAS = np.diag([0.8, 0.8, 2.0, 1.0])
NO_AUTO_STOP = PropagationOptions(auto_stop=False)


def ellipsoid(centre, radii):
    grid = np.indices(SHAPE, dtype=np.float32)
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1.0


LIVER = ellipsoid((11.5, 26, 24), (8, 12, 10))
KIDNEY = ellipsoid((12, 40, 46), (6, 8, 7))


@pytest.fixture(scope="module")
def micro():
    return load_model("micro", device="cpu", precision="fp32")


@pytest.fixture
def editor():
    """A scene with a CT (two organs), a segmentation of two empty segments, and a Segment Editor
    node and logic set up as the editor widget sets them (editor node, segmentation, source)."""
    scene = slicer.vtkMRMLScene()
    scene.RegisterNodeClass(slicer.vtkMRMLSegmentEditorNode())
    ensure_converter_rules()
    rng = np.random.default_rng(5)
    array = (40 + 120 * LIVER + 220 * KIDNEY + rng.normal(0, 10, SHAPE)).astype(np.int16)
    volume_node = add_volume(scene, array, IJK_TO_RAS)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "segmentation")
    segmentation.CreateDefaultDisplayNodes()
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    ids = [segmentation.GetSegmentation().AddEmptySegment(n, n) for n in ("liver", "kidney")]
    editor_node = scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
    logic = slicer.vtkSlicerSegmentEditorLogic()
    logic.SetMRMLScene(scene)
    logic.SetSegmentEditorNode(editor_node)
    editor_node.SetAndObserveSegmentationNode(segmentation)
    editor_node.SetAndObserveSourceVolumeNode(volume_node)
    logic.SetSegmentationNode(segmentation)
    logic.SetSourceVolumeNode(volume_node)
    return scene, volume_node, segmentation, ids, editor_node, logic


def session_of(micro, volume_node):
    return EditSession(VolumeSession(micro, volume_from_node(volume_node), axis="k", window="40,400"), NO_AUTO_STOP)


def writes(editor, session):
    _, _, segmentation, _, _, logic = editor
    return EditorWrites.through(logic, segmentation, session.volume, session.engine.plan.view_of)


def centre_box(mask, k):
    rows, cols = np.nonzero(mask[k])
    return (int(cols.min()), int(rows.min()), k), (int(cols.max()), int(rows.max()), k)


def test_the_prompt_book_keeps_prompts_per_segment_and_slice_with_stable_labels():
    book = PromptBook(slice_axis=2)
    assert book.add_point("liver", (10.2, 20.7, 5.4), True) == 5
    book.add_point("kidney", (30, 20, 7), True)
    book.set_box("liver", (1, 2, 5), (9, 8, 5))
    book.set_box("liver", (2, 3, 5), (8, 7, 5))  # a new drag replaces the slice's box
    book.add_point("liver", (4, 4, 9), False)
    assert book.slices("liver") == [5, 9] and book.prompted_segments() == ["liver", "kidney"]
    assert book.label("liver") == 1 and book.label("kidney") == 2
    assert book.prompts(["liver"], only_slice=5) == {"space": "IJK", "objects": [
        {"label": 1, "points": [{"position": [10, 21, 5], "positive": True}],
         "boxes": [{"corner1": [2, 3, 5], "corner2": [8, 7, 5]}]}]}
    assert book.clear_slice("liver", 5) and not book.clear_slice("liver", 5)
    assert book.prompts(["liver", "kidney"])["objects"] == [
        {"label": 1, "points": [{"position": [4, 4, 9], "positive": False}]},
        {"label": 2, "points": [{"position": [30, 20, 7], "positive": True}]}]
    with pytest.raises(ValueError, match="a box lies on one slice: corners on slices 5 and 6"):
        book.set_box("liver", (1, 2, 5), (9, 8, 6))


def test_a_click_previews_its_slice_from_features_encoded_once(editor, micro):
    _, volume_node, *_ = editor
    session = session_of(micro, volume_node)
    index, preview = session.click("liver", (24, 26, 11), positive=True)
    assert index == 11 and session.engine.features.misses == 1 and len(session.engine.features) == 1
    assert preview[11].any() and not np.delete(preview, 11, axis=0).any()
    expected = session.engine.preview(session.book.prompts(["liver"]), 11, NO_AUTO_STOP).labelmap == 1
    np.testing.assert_array_equal(preview, expected)  # the engine's preview, nothing else
    session.click("liver", (24, 35, 11), positive=True)
    assert session.engine.features.misses == 1 and session.engine.features.hits >= 2  # the slice's features reused


def test_a_preview_replaces_only_its_slice_of_the_segment_and_one_undo_restores_it(editor, micro):
    _, volume_node, segmentation, (liver, _), _, logic = editor
    session = session_of(micro, volume_node)
    write = writes(editor, session)
    earlier = np.zeros(SHAPE, bool)
    earlier[5, 10:20, 10:20] = earlier[11, 0:4, 0:4] = True  # on slice 5, and a stray patch on slice 11
    write.replace_segments({liver: earlier})
    index, preview = session.click("liver", (24, 26, 11))
    write.replace_slice(liver, index, preview)
    now = segment_array(segmentation, liver, session.volume)
    np.testing.assert_array_equal(now[11], preview[11])  # the stray patch is gone, the preview is there
    np.testing.assert_array_equal(np.delete(now, 11, axis=0), np.delete(earlier, 11, axis=0))
    assert logic.CanUndo()
    logic.Undo()
    np.testing.assert_array_equal(segment_array(segmentation, liver, session.volume), earlier)


def test_writes_honour_the_editors_intensity_range_and_overwrite_rule(editor, micro):
    _, volume_node, segmentation, (liver, kidney), editor_node, _ = editor
    session = session_of(micro, volume_node)
    write = writes(editor, session)
    block = np.zeros(SHAPE, bool)
    block[11, 20:50, 20:50] = True
    write.replace_segments({kidney: block})
    editor_node.SetSourceVolumeIntensityMask(True)
    editor_node.SetSourceVolumeIntensityMaskRange(100, 400)  # the organs (160, 260 HU), not the background (40)
    write.replace_slice(liver, 11, block)  # overwriting other segments (the editor's default)
    organs = (LIVER | KIDNEY)[11] & block[11]
    np.testing.assert_array_equal(segment_array(segmentation, liver, session.volume)[11], organs)
    kidney_left = block[11] & ~organs
    np.testing.assert_array_equal(segment_array(segmentation, kidney, session.volume)[11], kidney_left)
    editor_node.SetSourceVolumeIntensityMask(False)
    editor_node.SetOverwriteMode(editor_node.OverwriteNone)
    write.replace_slice(liver, 11, block)
    np.testing.assert_array_equal(segment_array(segmentation, liver, session.volume)[11], block[11])
    np.testing.assert_array_equal(segment_array(segmentation, kidney, session.volume)[11], kidney_left)  # kept


def test_propagate_all_runs_every_prompted_segment_in_one_pass_into_its_own_segment(editor, micro):
    _, volume_node, segmentation, (liver, kidney), _, logic = editor
    session = session_of(micro, volume_node)
    session.box("liver", *centre_box(LIVER, 11))
    session.box("kidney", *centre_box(KIDNEY, 12))
    masks = session.propagate(["liver", "kidney"])
    both = session.engine.propagate(session.book.prompts(["liver", "kidney"]), NO_AUTO_STOP).labelmap
    np.testing.assert_array_equal(masks["liver"], both == 1)
    np.testing.assert_array_equal(masks["kidney"], both == 2)
    assert masks["liver"].any() and masks["kidney"].any()
    writes(editor, session).replace_segments({liver: masks["liver"], kidney: masks["kidney"]})
    for segment_id, mask in ((liver, masks["liver"]), (kidney, masks["kidney"])):
        np.testing.assert_array_equal(segment_array(segmentation, segment_id, session.volume), mask)
    logic.Undo()  # one propagation, one undo state
    assert not segment_array(segmentation, liver, session.volume).any()
    assert not segment_array(segmentation, kidney, session.volume).any()


def test_a_click_on_a_propagated_slice_corrects_it_and_re_propagates_from_there_only(editor, micro):
    _, volume_node, *_ = editor
    session = session_of(micro, volume_node)
    session.box("liver", *centre_box(LIVER, 11))
    before = session.propagate(["liver"])["liver"]
    first = session.results["liver"]
    _, preview = session.click("liver", (24, 26, 15), positive=False)
    expected = session.engine.preview(session.book.prompts(["liver"]), 15, NO_AUTO_STOP, previous=first)
    np.testing.assert_array_equal(preview, expected.labelmap == 1)  # the earlier mask refined by the click
    assert session.corrected == {"liver": 15}
    after = session.propagate(["liver"])["liver"]
    np.testing.assert_array_equal(after[:15], before[:15])  # forward from slice 15: the rest kept
    assert session.results["liver"].slices_processed == {"forward": SHAPE[0] - 15}
    assert "liver" not in session.corrected


def test_a_cancelled_propagation_raises_and_leaves_the_session_and_segments_as_they_were(editor, micro):
    _, volume_node, segmentation, (liver, _), _, _ = editor
    session = session_of(micro, volume_node)
    session.box("liver", *centre_box(LIVER, 11))
    calls = []
    with pytest.raises(Cancelled):
        session.propagate(["liver"], should_cancel=lambda: calls.append(1) or len(calls) > 3)
    assert session.results == {} and not segment_array(segmentation, liver, session.volume).any()


def test_the_worker_runs_the_effects_interactions_on_one_edit_session(editor, micro):
    """Through the module's one worker thread (mrml.worker): a click previews, a propagation
    reports progress and answers the masks; the volume is copied once for every request."""
    from SegmentWithSAM2Lib.mrml.jobs import EditRequests, Status
    from SegmentWithSAM2Lib.mrml.worker import Worker

    _, volume_node, *_ = editor
    worker = Worker(load_model=lambda *a, **k: micro)
    requests = EditRequests()
    values = dict(model_id="micro", device="cpu", window="40,400", axis="k", auto_stop=False)
    try:
        click = worker.submit(requests.make(volume_node, "box", ("liver", *centre_box(LIVER, 11)), **values))
        assert click.wait(60) and click.status is Status.DONE, click.message
        index, preview = click.result
        assert index == 11 and preview[11].any()
        propagate = requests.make(volume_node, "propagate", (["liver"],), **values)
        assert propagate.volume is click.request.volume  # not copied again
        job = worker.submit(propagate)
        assert job.wait(120) and job.status is Status.DONE, job.message
        assert job.result["liver"][11].sum() == preview[11].sum() and job.result["liver"].any(axis=(1, 2)).sum() > 5
        assert job.progress[0] == job.progress[1] == SHAPE[0] + 1  # every slice, the prompted one by both passes
        with pytest.raises(ValueError, match="unknown edit action 'paint'"):
            requests.make(volume_node, "paint", **values)
        moved = IJK_TO_RAS.copy()
        moved[0, 3] = 5.0  # the volume moved (its image untouched): a new copy, a new session key
        volume_node.SetIJKToRASMatrix(vtk_matrix(moved))
        again = requests.make(volume_node, "click", **values)
        assert again.volume is not click.request.volume and again.session_key != click.request.session_key
        np.testing.assert_array_equal(again.volume.ijk_to_ras, moved)
    finally:
        worker.shutdown()


def test_markers_show_the_segments_prompts_on_the_views_plane_in_its_pixels():
    from SegmentWithSAM2Lib.mrml.prompt_markers import markers_in_view

    book = PromptBook(slice_axis=2)
    book.add_point("liver", (10, 20, 5), True)
    book.add_point("liver", (12, 22, 5), False)
    book.add_point("liver", (30, 30, 6), True)  # another slice: not shown
    book.set_box("liver", (2, 3, 5), (8, 9, 5))
    xy_to_ras = np.eye(4)
    xy_to_ras[:3, :3] = np.diag([0.5, 0.5, 2.0])  # 0.5 mm view pixels, one 2 mm slice per z step
    xy_to_ras[2, 3] = 10.0  # the plane at S = 10 mm: slice 5 of the volume below
    shown = markers_in_view(book, "liver", IJK_TO_RAS, xy_to_ras, tolerance_mm=1.0)
    shown = {k: np.round(v, 6).tolist() for k, v in shown.items()}
    assert shown == {"positive": [[16.0, 32.0]], "negative": [[19.2, 35.2]],
                     "boxes": [[[3.2, 4.8], [12.8, 14.4]]]}
    assert markers_in_view(book, "kidney", IJK_TO_RAS, xy_to_ras, 1.0) == {"positive": [], "negative": [], "boxes": []}


def test_a_failed_preview_takes_its_prompt_back(editor, micro):
    _, volume_node, *_ = editor
    session = session_of(micro, volume_node)
    session.click("liver", (24, 26, 11), positive=True)
    with pytest.raises(Exception, match="only negative points"):
        session.click("kidney", (40, 40, 12), positive=False)  # nothing to start from: refused
    assert session.book.slices("kidney") == [] and session.book.on_slice("liver", 11).points == [((24, 26, 11), True)]


def test_clicks_count_only_in_views_along_the_slices_and_inside_the_volume():
    from SegmentWithSAM2Lib.mrml.prompt_markers import ijk_of, view_shows_slices

    axial, coronal = np.eye(4), np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], float)
    assert view_shows_slices(axial, IJK_TO_RAS, slice_axis=2)
    assert not view_shows_slices(coronal, IJK_TO_RAS, slice_axis=2)
    volume = Volume(np.zeros(SHAPE, np.int16), IJK_TO_RAS)
    assert ijk_of((8.0, 4.3, 10.9), volume) == (10, 5, 5)
    assert ijk_of((-0.3, 0, 0), volume) == (0, 0, 0)  # i = -0.375 rounds to 0
    assert ijk_of((-0.9, 0, 0), volume) is None  # i = -1.125 rounds to -1: outside
    assert ijk_of((0, 0, 48.0), volume) is None  # k = 24: one past the last slice
