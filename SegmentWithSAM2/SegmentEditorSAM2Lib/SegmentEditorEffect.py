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
from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error
from SegmentWithSAM2Lib.mrml.prompt_markers import (BOX_COLOR, NEGATIVE_COLOR, POSITIVE_COLOR, ijk_of, markers_in_view,
                                                    view_shows_slices)
from SegmentWithSAM2Lib.mrml.volumes import matrix_to_numpy
from SegmentWithSAM2Lib.mrml.worker import shared_worker

# keys read in the slice views: none is the Segment Editor's (0-9, Shift+0-9, Escape, Space, z, y, q,
# w, i, / * , . < >), a slice view's (g t f b v V r [ ] { } and the arrows) or the markups' (s, Delete,
# BackSpace); the editor's Escape leaves the effect, which cancels a run
KEYS = {"p": ("propagate", None), "u": ("propagate", "forward"), "d": ("propagate", "backward"),
        "a": ("propagate all", None), "n": ("polarity", None), "c": ("clear slice", None)}
DRAG_PIXELS = 4  # a press and release farther apart than this is a box


class SegmentEditorEffect(AbstractScriptedSegmentEditorEffect):
    def __init__(self, scriptedEffect):
        scriptedEffect.name = "SAM2"
        scriptedEffect.perSegment = True
        scriptedEffect.requireSegments = True
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)
        self.requests, self.job, self.pressed, self.actors, self.lastView = EditRequests(), None, None, {}, None

    def clone(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects

        cloned = effects.qSlicerSegmentEditorScriptedEffect(None)
        cloned.setPythonSource(__file__.replace("\\", "/"))
        return cloned

    def icon(self):
        path = os.path.join(os.path.dirname(__file__), "..", "Resources", "Icons", "SegmentWithSAM2.png")
        return qt.QIcon(path) if os.path.exists(path) else qt.QIcon()

    def helpText(self):
        return _("<b>Click to segment the selected segment with SAM2</b>, in slice views along the volume's "
                 "slices (axial unless the module's Axis says otherwise). Left click: a positive point "
                 "(Ctrl+click, or with 'Negative clicks' on: a negative one); drag: a box. Each prompt "
                 "previews its slice at once. Keys in a slice view: p propagate both ways, u / d one way "
                 "(up, down), a propagate every prompted segment, n switch polarity, c clear this slice's "
                 "prompts; Esc cancels a run (and leaves the effect); z / Ctrl+Z undo the last change to "
                 "the segment (its prompts stay: c clears them). A click on a propagated slice corrects it; "
                 "the next propagation re-runs from there. Settings: the Segment With SAM2 module.")

    def setupOptionsFrame(self):
        self.negative = qt.QCheckBox(_("Negative clicks (n)"))
        self.scriptedEffect.addOptionsWidget(self.negative)
        row, self.actionButtons = qt.QHBoxLayout(), []
        for text, action, direction in ((_("Propagate (p)"), "propagate", None), (_("Up (u)"), "propagate", "forward"),
                                        (_("Down (d)"), "propagate", "backward"), (_("All segments (a)"), "propagate all", None),
                                        (_("Clear slice (c)"), "clear slice", None)):
            button = qt.QPushButton(text)
            button.clicked.connect(lambda _=None, a=action, d=direction: self.act(a, d, self.lastView))
            row.addWidget(button)
            self.actionButtons.append(button)
        self.scriptedEffect.addOptionsWidget(row)
        self.cancelButton = qt.QPushButton(_("Cancel"))
        self.cancelButton.enabled = False
        self.cancelButton.clicked.connect(self.cancel)
        self.progress, self.status = qt.QProgressBar(), qt.QLabel()
        for widget in (self.cancelButton, self.progress, self.status):
            self.scriptedEffect.addOptionsWidget(widget)

    def activate(self):
        self.drawMarkers()

    def deactivate(self):
        self.cancel()
        self.removeMarkers()

    def layoutChanged(self):
        self.removeMarkers()  # the views may be gone

    def cancel(self):
        if self.job is not None:
            self.job.cancel()

    def processInteractionEvents(self, interactor, eventId, viewWidget):
        if viewWidget.className() != "qMRMLSliceWidget":
            return False
        key = interactor.GetKeySym() if eventId == vtk.vtkCommand.KeyPressEvent else None
        ours = eventId in (vtk.vtkCommand.LeftButtonPressEvent, vtk.vtkCommand.LeftButtonReleaseEvent) or key in KEYS
        if self.job is not None:  # busy: say so, and let nothing through to window/level or slice keys
            if ours:
                self.status.text = _("Busy: {text} (Cancel or Esc stops it)").format(text=self.job.progress[2])
            return ours
        if interactor.GetAltKey() or interactor.GetShiftKey():
            return False  # Slicer's own modified drags (translate, rotate intersections)
        self.lastView = viewWidget
        xy = interactor.GetEventPosition()
        if eventId == vtk.vtkCommand.LeftButtonPressEvent:
            self.pressed = (viewWidget, xy, bool(interactor.GetControlKey()))
            return True
        if eventId == vtk.vtkCommand.LeftButtonReleaseEvent and self.pressed is not None:
            (view, start, ctrl), self.pressed = self.pressed, None
            if view is viewWidget:
                self.prompt(viewWidget, start, xy, positive=ctrl == self.negative.checked)
            return True
        if key in KEYS:
            self.act(*KEYS[key], viewWidget)
            return True
        return False

    def processViewNodeEvents(self, callerViewNode, eventId, viewWidget):
        if callerViewNode and callerViewNode.IsA("vtkMRMLSliceNode"):
            self.drawMarkers()

    def prompt(self, view, start, end, positive):
        request = self._request("click", ())
        if request is None or not self._faces(view, request):
            return
        ijk = [ijk_of(self.xyToRas(xy, view), request.volume) for xy in (start, end)]
        if None in ijk:
            self.status.text = _("Outside the volume: click inside it")
            return
        far = max(abs(a - b) for a, b in zip(start, end)) > DRAG_PIXELS
        segment = self._segment()
        job = self.run("box" if far else "click", (segment, *ijk) if far else (segment, ijk[1], positive))
        if job is not None:
            index, preview = job.result
            self._writes(job.request).replace_slice(segment, index, preview)
        self.drawMarkers()

    def act(self, action, direction=None, view=None):
        request = self._request("propagate", ())
        if request is None:
            return
        if action == "polarity":
            self.negative.checked = not self.negative.checked
        elif action == "clear slice" and view is not None and self._faces(view, request):
            ras = self.xyToRas(view.sliceView().renderWindow().GetInteractor().GetEventPosition(), view)
            ijk = ijk_of(ras, request.volume)
            if ijk is not None:
                self.run("clear_slice", (self._segment(), ijk[plan_slices(request.volume, request.axis).slice_axis]))
        elif action in ("propagate", "propagate all"):
            book = shared_worker().edit_prompts(request.session_key)
            ids = book.prompted_segments() if action == "propagate all" and book else [self._segment()]
            job = self.run("propagate", (ids, direction))
            if job is not None:
                self._writes(job.request).replace_segments(job.result)
        self.drawMarkers()

    def run(self, action, args):
        """Run one interaction on the worker, Slicer staying live; the job if it succeeded, was not
        cancelled and its segment and segmentation are still the editor's (else nothing is written)."""
        target, request = (self._segmentation(), self._segment()), self._request(action, args)
        if request is None or self.job is not None or self.scriptedEffect.confirmCurrentSegmentVisible() == 0:
            return None  # 0: NotConfirmed (a hidden segment, and the user said no)
        job = self.job = shared_worker().submit(request)
        self._setBusy(True)
        try:
            waitForJob(job, self._showProgress)
        finally:
            self.job = None
            self._setBusy(False)
        self.status.text = job.message or _("done")
        current = (self._segmentation(), self._segment())
        ok = job.status is Status.DONE and not job.cancel_requested() and self.scriptedEffect.active()
        return job if ok and current == target else None
    def drawMarkers(self):
        """The selected segment's prompts on each slice view showing the segmentation (not while
        the worker may change them)."""
        request = self._request("click", ()) if self.job is None and self.scriptedEffect.active() else None
        book = request and shared_worker().edit_prompts(request.session_key)
        for view in self._sliceViews():
            if not self.scriptedEffect.segmentationDisplayableInView(view.mrmlSliceNode()):
                continue
            actors = self.actors.get(view) or self._addActors(view)
            shown = markers_in_view(book, self._segment(), request.volume.ijk_to_ras,
                                    matrix_to_numpy(view.mrmlSliceNode().GetXYToRAS()),
                                    0.5 * min(request.volume.spacing)) if book else {}
            for actor, key in zip(actors, ("positive", "negative", "boxes")):
                actor.GetMapper().SetInputData(_polydata(shown.get(key, []), key == "boxes"))
            view.sliceView().scheduleRender()

    def removeMarkers(self):
        for view, actors in self.actors.items():
            for actor in actors:
                self.scriptedEffect.removeActor2D(view, actor)
        self.actors = {}

    def _setBusy(self, busy):
        self.cancelButton.enabled = busy
        for button in self.actionButtons:
            button.enabled = not busy

    def _faces(self, view, request):
        """Prompts only from views along the session's slices (others would land on unseen slices)."""
        axis = plan_slices(request.volume, request.axis).slice_axis
        if view_shows_slices(matrix_to_numpy(view.mrmlSliceNode().GetXYToRAS()), request.volume.ijk_to_ras, axis):
            return True
        self.status.text = _("Click in a view along the volume's slices (the module's Axis setting)")
        return False

    def _showProgress(self, done, total, text):
        self.progress.maximum, self.progress.value, self.status.text = max(total, 1), min(done, max(total, 1)), text

    def _request(self, action, args):
        """The interaction as a request with the module's settings; None (said in the panel)
        without a source volume and segment, or for a volume the engine refuses."""
        volume = self.scriptedEffect.parameterSetNode().GetSourceVolumeNode()
        if volume is None or not self._segment():
            self.status.text = _("Choose a source volume and select a segment")
            return None
        p = self._moduleLogic().getParameterNode()  # the module's settings apply to the effect
        try:
            return self.requests.make(volume, action, args, window=p.window, model_id=p.model,
                                      checkpoint=p.checkpoint, device=p.device, axis=p.axis, auto_stop=p.autoStop)
        except SegmentWithSAM2Error as error:
            self.status.text = str(error)
            return None

    def _writes(self, request):
        effect = self.scriptedEffect
        plan = plan_slices(request.volume, request.axis)
        modes = {m: getattr(slicer.qSlicerSegmentEditorAbstractEffect, f"ModificationMode{m}") for m in ("Set", "Add", "Remove")}
        modify = lambda segment_id, image, mode: effect.modifySegmentByLabelmap(  # noqa: E731
            self._segmentation(), segment_id, image, mode)
        return EditorWrites(self._segmentation(), request.volume, plan.view_of, effect.saveStateForUndo, modify, modes)

    def _moduleLogic(self):
        from SegmentWithSAM2 import SegmentWithSAM2Logic

        self.logic = getattr(self, "logic", None) or SegmentWithSAM2Logic()  # one per effect (clone)
        return self.logic

    def _segment(self):
        return self.scriptedEffect.parameterSetNode().GetSelectedSegmentID()

    def _segmentation(self):
        return self.scriptedEffect.parameterSetNode().GetSegmentationNode()

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
