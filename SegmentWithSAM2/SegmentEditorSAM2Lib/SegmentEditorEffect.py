"""The "SAM2" Segment Editor effect: a thin Qt layer.  View events become interactions of
``SegmentWithSAM2Lib.mrml.editing.EditSession`` (run on the module's one worker thread) and the
answers are written into the selected segment through the editor (``mrml.editor_writes``: its
masking and overwrite rules, one undo state per interaction).  Settings (model, device, window,
axis, auto-stop) are the Segment With SAM2 module's."""

import os

import qt
import slicer
import vtk
from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect
from slicer.i18n import tr as _

from SegmentWithSAM2Qt import waitForJob

from SegmentWithSAM2Lib.core.geometry import plan_slices
from SegmentWithSAM2Lib.mrml.editor_writes import EditorWrites
from SegmentWithSAM2Lib.mrml.jobs import EditRequests, Status
from SegmentWithSAM2Lib.mrml.prompt_markers import BOX_COLOR, NEGATIVE_COLOR, POSITIVE_COLOR, markers_in_view
from SegmentWithSAM2Lib.mrml.volumes import matrix_to_numpy
from SegmentWithSAM2Lib.mrml.worker import shared_worker

# keys read in the slice views (none is one of qMRMLSegmentEditorWidget's shortcuts: 0-9, Shift+0-9,
# Escape, Space, z, y, q, w, i, / * , . < >; the editor's Escape leaves the effect, which cancels a run)
KEYS = {"p": ("propagate", None), "Up": ("propagate", "forward"), "Down": ("propagate", "backward"),
        "a": ("propagate all", None), "n": ("polarity", None), "c": ("clear slice", None)}
DRAG_PIXELS = 4  # a press and release farther apart than this is a box


class SegmentEditorEffect(AbstractScriptedSegmentEditorEffect):
    def __init__(self, scriptedEffect):
        scriptedEffect.name = "SAM2"
        scriptedEffect.perSegment = True
        scriptedEffect.requireSegments = True
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)
        self.requests, self.job, self.pressed, self.actors = EditRequests(), None, None, {}

    def clone(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects

        cloned = effects.qSlicerSegmentEditorScriptedEffect(None)
        cloned.setPythonSource(__file__.replace("\\", "/"))
        return cloned

    def icon(self):
        path = os.path.join(os.path.dirname(__file__), "..", "Resources", "Icons", "SegmentWithSAM2.png")
        return qt.QIcon(path) if os.path.exists(path) else qt.QIcon()

    def helpText(self):
        return _("<b>Click to segment the selected segment with SAM2.</b> Left click: a positive point "
                 "(Ctrl+click, or with 'Negative clicks' on: a negative one); drag: a box. Each prompt "
                 "previews its slice at once. Keys in a slice view: p propagate both ways, Up / Down one "
                 "way, a propagate every prompted segment, n switch polarity, c clear this slice's "
                 "prompts; Esc cancels a run (and leaves the effect); z / Ctrl+Z undo one interaction. "
                 "A click on a propagated slice corrects it; the next propagation re-runs from there. "
                 "Settings: the Segment With SAM2 module.")

    def setupOptionsFrame(self):
        self.negative = qt.QCheckBox(_("Negative clicks (n)"))
        self.scriptedEffect.addOptionsWidget(self.negative)
        row = qt.QHBoxLayout()
        for text, action, direction in ((_("Propagate (p)"), "propagate", None), (_("Up"), "propagate", "forward"),
                                        (_("Down"), "propagate", "backward"), (_("All segments (a)"), "propagate all", None),
                                        (_("Clear slice (c)"), "clear slice", None)):
            button = qt.QPushButton(text)
            button.clicked.connect(lambda _=None, a=action, d=direction: self.act(a, d))
            row.addWidget(button)
        self.scriptedEffect.addOptionsWidget(row)
        self.cancelButton = qt.QPushButton(_("Cancel"))
        self.cancelButton.enabled = False
        self.cancelButton.clicked.connect(self.cancel)
        self.progress, self.status = qt.QProgressBar(), qt.QLabel()
        for widget in (self.cancelButton, self.progress, self.status):
            self.scriptedEffect.addOptionsWidget(widget)

    def deactivate(self):
        self.cancel()
        for view, actors in self.actors.items():
            for actor in actors:
                self.scriptedEffect.removeActor2D(view, actor)
        self.actors = {}

    def cancel(self):
        if self.job is not None:
            self.job.cancel()

    def processInteractionEvents(self, interactor, eventId, viewWidget):
        if viewWidget.className() != "qMRMLSliceWidget" or self.job is not None:
            return False
        xy = interactor.GetEventPosition()
        if eventId == vtk.vtkCommand.LeftButtonPressEvent:
            self.pressed = (xy, bool(interactor.GetControlKey()))
            return True
        if eventId == vtk.vtkCommand.LeftButtonReleaseEvent and self.pressed is not None:
            (start, ctrl), self.pressed = self.pressed, None
            self.prompt(viewWidget, start, xy, positive=ctrl == self.negative.checked)
            return True
        if eventId == vtk.vtkCommand.KeyPressEvent and interactor.GetKeySym() in KEYS:
            self.act(*KEYS[interactor.GetKeySym()], viewWidget)
            return True
        return False

    def processViewNodeEvents(self, callerViewNode, eventId, viewWidget):
        self.drawMarkers()

    def prompt(self, view, start, end, positive):
        image = self.scriptedEffect.sourceVolumeImageData()
        ijk = lambda xy: self.xyToIjk(xy, view, image, self._segmentation().GetParentTransformNode())  # noqa: E731
        far = max(abs(a - b) for a, b in zip(start, end)) > DRAG_PIXELS
        args = (self._segment(), ijk(start), ijk(end)) if far else (self._segment(), ijk(end), positive)
        job = self.run("box" if far else "click", args)
        if job is not None:
            index, preview = job.result
            self._writes(job.request).replace_slice(self._segment(), index, preview)

    def act(self, action, direction=None, view=None):
        if action == "polarity":
            self.negative.checked = not self.negative.checked
        elif action == "clear slice" and view is not None:
            index = self._sliceIndex(view)
            self.run("clear_slice", (self._segment(), index))
        elif action in ("propagate", "propagate all"):
            book = shared_worker().edit_prompts(self._request("propagate", ()).session_key)
            ids = book.prompted_segments() if action == "propagate all" and book else [self._segment()]
            job = self.run("propagate", (ids, direction))
            if job is not None:
                self._writes(job.request).replace_segments(job.result)
        self.drawMarkers()

    def run(self, action, args):
        """Run one interaction on the worker, keeping Slicer responsive; the job if it succeeded."""
        self.job, self.cancelButton.enabled = shared_worker().submit(self._request(action, args)), True
        try:
            waitForJob(self.job, self._showProgress)
            job = self.job
        finally:
            self.job, self.cancelButton.enabled = None, False
        self.status.text = job.message or _("done")
        return job if job.status is Status.DONE else None

    def drawMarkers(self):
        node = self.scriptedEffect.parameterSetNode().GetSourceVolumeNode()
        book = node and shared_worker().edit_prompts(self._request("click", ()).session_key)
        for view in self._sliceViews():
            actors = self.actors.get(view) or self._addActors(view)
            shown = markers_in_view(book, self._segment(), self.job_volume().ijk_to_ras,
                                    matrix_to_numpy(view.mrmlSliceNode().GetXYToRAS()),
                                    0.5 * min(self.job_volume().spacing)) if book else {}
            for actor, key in zip(actors, ("positive", "negative", "boxes")):
                actor.GetMapper().SetInputData(_polydata(shown.get(key, []), key == "boxes"))
            view.sliceView().scheduleRender()

    def _showProgress(self, done, total, text):
        self.progress.maximum, self.progress.value, self.status.text = max(total, 1), min(done, max(total, 1)), text

    def _request(self, action, args):
        from SegmentWithSAM2 import SegmentWithSAM2Logic

        p = SegmentWithSAM2Logic().getParameterNode()
        return self.requests.make(self.scriptedEffect.parameterSetNode().GetSourceVolumeNode(), action, args,
                                  window=p.window, model_id=p.model, checkpoint=p.checkpoint, device=p.device,
                                  axis=p.axis, auto_stop=p.autoStop)

    def job_volume(self):
        return self._request("click", ()).volume

    def _writes(self, request):
        effect = self.scriptedEffect
        plan = plan_slices(request.volume, request.axis)
        modes = {m: getattr(slicer.qSlicerSegmentEditorAbstractEffect, f"ModificationMode{m}") for m in ("Set", "Add", "Remove")}
        modify = lambda segment_id, image, mode: effect.modifySegmentByLabelmap(  # noqa: E731
            self._segmentation(), segment_id, image, mode)
        return EditorWrites(self._segmentation(), request.volume, plan.view_of, effect.saveStateForUndo, modify, modes)

    def _segment(self):
        return self.scriptedEffect.parameterSetNode().GetSelectedSegmentID()

    def _segmentation(self):
        return self.scriptedEffect.parameterSetNode().GetSegmentationNode()

    def _sliceIndex(self, view):
        xy = view.sliceView().renderWindow().GetInteractor().GetEventPosition()
        ijk = self.xyToIjk(xy, view, self.scriptedEffect.sourceVolumeImageData())
        return int(ijk[plan_slices(self.job_volume(), self._request("click", ()).axis).slice_axis])

    def _sliceViews(self):
        manager = slicer.app.layoutManager()
        return [manager.sliceWidget(name) for name in manager.sliceViewNames()] if manager else []

    def _addActors(self, view):
        actors = []
        for color in (POSITIVE_COLOR, NEGATIVE_COLOR, BOX_COLOR):
            actor, mapper = vtk.vtkActor2D(), vtk.vtkPolyDataMapper2D()
            actor.SetMapper(mapper)
            actor.GetProperty().SetColor(*color)
            actor.GetProperty().SetPointSize(9)
            actor.GetProperty().SetLineWidth(2)
            self.scriptedEffect.addActor2D(view, actor)
            actors.append(actor)
        self.actors[view] = actors
        return actors


def _polydata(items, boxes):
    """Points (as vertices) or boxes (as closed outlines), in view XY."""
    data, points, cells = vtk.vtkPolyData(), vtk.vtkPoints(), vtk.vtkCellArray()
    for item in items:
        corners = [item[0], (item[1][0], item[0][1]), item[1], (item[0][0], item[1][1])] if boxes else [item]
        ids = [points.InsertNextPoint(x, y, 0) for x, y in corners]
        ids += ids[:1] if boxes else []  # an outline closes on its first corner
        cells.InsertNextCell(len(ids), ids)
    data.SetPoints(points)
    data.SetLines(cells) if boxes else data.SetVerts(cells)
    return data
