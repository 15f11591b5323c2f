"""SegmentWithSAM2: the Slicer scripted module (Module, parameter node, Widget, Logic, Test).

The module stays thin: the Widget reads the GUI and calls the Logic; the Logic reads the parameter
node into a request (plain values) and hands it to the shared ``SegmentWithSAM2Lib.mrml.worker``,
whose one persistent thread runs the model (for the "SAM2" Segment Editor effect too, registered
here: SegmentEditorSAM2Lib); MRML nodes are only touched on the main thread.
"""

import sys
from pathlib import Path
from typing import Annotated

import qt
import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from SegmentWithSAM2Qt import ServerChoice, registerSAM2Effect, useSlicerCache, waitForJob

from SegmentWithSAM2Lib.mrml.jobs import DownloadRequest, SegmentRequest, Status, describe, segment_request
from SegmentWithSAM2Lib.mrml.markups import LastPlacedPoint, style_prompt_points
from SegmentWithSAM2Lib.mrml.model_picker import model_choice, model_choices, model_ids
from SegmentWithSAM2Lib.mrml.slicer_version import unsupported
from SegmentWithSAM2Lib.mrml.volumes import volume_from_node
from SegmentWithSAM2Lib.mrml.worker import shared_worker
from SegmentWithSAM2Lib.options import AXES, DEFAULT_MODEL, DEVICES, DIRECTIONS, OVERLAPS, PRESETS


class SegmentWithSAM2(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Segment With SAM2")
        # the core modules' context, as Slicer's template: a translated UI keeps one "Segmentation" category (D27)
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.contributors, self.parent.dependencies = ["SegmentWithSAM2 developers"], ["Segmentations"]
        self.parent.helpText = _(
            "Segment CT, MRI and PET volumes with SAM2, SAM2.1 and MedSAM2: place positive/negative points or "
            "a box on a slice, and the object is propagated through the neighbouring slices in both directions. "
            "Results are written as segments on the volume's grid, with the settings used stored on each segment.")
        self.parent.acknowledgementText = _(
            "Built on Meta's SAM2 and the MedSAM2 weights of WangLab; the weights keep their own licenses. "
            "Not for clinical use.")
        slicer.app.connect("startupCompleted()", registerSAM2Effect)  # the "SAM2" Segment Editor effect


@parameterNodeWrapper
class SegmentWithSAM2ParameterNode:
    inputVolume: slicer.vtkMRMLScalarVolumeNode
    segmentation: slicer.vtkMRMLSegmentationNode
    positivePoints: slicer.vtkMRMLMarkupsFiducialNode
    negativePoints: slicer.vtkMRMLMarkupsFiducialNode
    box: slicer.vtkMRMLMarkupsROINode
    segmentName: str = "SAM2 segment"
    # one picker over the registry; its rows are relabelled with each model's state (D14)
    model: Annotated[str, Choice(model_ids())] = DEFAULT_MODEL
    checkpoint: str = ""
    device: Annotated[str, Choice(list(DEVICES))] = "auto"
    window: str = "display"
    axis: Annotated[str, Choice(list(AXES))] = "auto"
    direction: Annotated[str, Choice(list(DIRECTIONS))] = "both"
    # bounds, or Slicer's spin-box connector widens the range to the whole int and "whole volume" never shows (D13)
    rangeFirst: Annotated[int, WithinRange(-1, 100000)] = -1
    rangeLast: Annotated[int, WithinRange(-1, 100000)] = -1
    autoStop: bool = True
    postprocess: bool = True
    overlap: Annotated[str, Choice(list(OVERLAPS))] = "overwrite"
    preset: Annotated[str, Choice(list(PRESETS))] = "none"  # medsam2: its own stop and clean-up


class SegmentWithSAM2Widget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._maskPrompts = []  # segments used as mask prompts, each on one slice
        self._lastPoint = LastPlacedPoint()  # where "this slice" is

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        tooOld = unsupported((slicer.app.majorVersion, slicer.app.minorVersion), sys.version_info)
        if tooOld:  # sam2 cannot be installed here: say so in the panel instead of failing later
            self.layout.addWidget(qt.QLabel(tooOld, wordWrap=True))
            return
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SegmentWithSAM2.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = SegmentWithSAM2Logic()
        self.serverChoice = ServerChoice(self.ui)  # "Run on": this computer or a server (no torch here then)
        # the segment selector follows the chosen segmentation; "None" means a new segment (item 6)
        self.ui.segmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.ui.segmentSelector.setCurrentNode)
        self.ui.segmentSelector.connect("currentSegmentChanged(QString)", self.onSegmentChosen)
        self.ui.segmentSliceButton.clicked.connect(lambda: self.onRun(thisSliceOnly=True))
        self.ui.propagateButton.clicked.connect(lambda: self.onRun())  # the Direction setting (D25)
        self.ui.propagateUpButton.clicked.connect(lambda: self.onRun(direction="forward"))
        self.ui.propagateDownButton.clicked.connect(lambda: self.onRun(direction="backward"))
        self.ui.repropagateButton.clicked.connect(lambda: self.onRun(fromThisSlice=True))
        self.ui.cancelButton.clicked.connect(self.onCancel)
        self.ui.downloadButton.clicked.connect(self.onDownload)
        self.ui.placePositiveButton.clicked.connect(lambda: self.placeMarkups("positivePoints", "vtkMRMLMarkupsFiducialNode"))
        self.ui.placeNegativeButton.clicked.connect(lambda: self.placeMarkups("negativePoints", "vtkMRMLMarkupsFiducialNode"))
        self.ui.placeBoxButton.clicked.connect(lambda: self.placeMarkups("box", "vtkMRMLMarkupsROINode"))
        self.ui.clearPromptsButton.clicked.connect(self.onClearPrompts)
        self.ui.maskFromSegmentButton.clicked.connect(self.onMaskFromSegment)
        self.ui.setRangeFirstButton.clicked.connect(lambda: self.setRangeEnd("rangeFirst"))
        self.ui.setRangeLastButton.clicked.connect(lambda: self.setRangeEnd("rangeLast"))
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()

    def cleanup(self):
        self.onCancel()
        self.removeObservers()
        if self.logic:
            self.logic.shutdown()

    def enter(self):
        if self.logic is not None:  # None: this Slicer is too old, and the panel says so
            self.initializeParameterNode()
            self.showModelStates()  # a download from the console or another Slicer meanwhile

    def exit(self):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event):
        if self._job is not None and isinstance(self._job.request, SegmentRequest):
            self.onCancel()  # a download outlives the scene
        self._maskPrompts = []
        self._lastPoint.forget()
        self.logic.worker.clear()  # the session and last result belong to the closing scene
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        """As Slicer's scripted-module template: a fresh parameter node if the module is shown (D5)."""
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        for role in ("positivePoints", "negativePoints", "box"):  # prompts of a loaded scene
            self._lastPoint.watch(getattr(self._parameterNode, role))

    def setParameterNode(self, parameterNode):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.ui.segmentSelector.setCurrentNode(self._parameterNode.segmentation)
            self.showModelStates()  # connectGui's Choice connector refilled the picker with bare ids

    def showModelStates(self):
        """Each picker row with its model's state; the connector reads the row index, not the text
        (parameterNodeWrapper/guiConnectors.py QComboBoxToStringableConnector, 5.10)."""
        for row, choice in enumerate(model_choices()):
            self.ui.modelSelector.setItemText(row, choice.label)
            self.ui.modelSelector.setItemData(row, choice.tooltip, qt.Qt.ToolTipRole)

    def onSegmentChosen(self, segmentId):
        self.ui.segmentNameLineEdit.enabled = not segmentId  # the name is for a new segment only

    def placeMarkups(self, role, className):
        """Create the prompt node if needed and start placing points in the slice views."""
        node = getattr(self._parameterNode, role)
        if node is None:
            node = slicer.mrmlScene.AddNewNodeByClass(className, slicer.mrmlScene.GenerateUniqueName(role))
            setattr(self._parameterNode, role, node)
        if role != "box":
            style_prompt_points(node, role == "positivePoints")
        self._lastPoint.watch(node)
        slicer.modules.markups.logic().SetActiveList(node)
        slicer.modules.markups.logic().StartPlaceMode(role != "box")  # points: keep placing; box: one ROI

    def onMaskFromSegment(self):
        """The chosen segment, on the current slice, becomes a mask prompt."""
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Could not use the segment as a mask prompt.")):
            segmentId = self.ui.segmentSelector.currentSegmentID()
            self._maskPrompts.append(self.logic.maskPrompt(p, segmentId, self.currentSliceIndex()))
            self.ui.statusLabel.text = _("{count} mask prompt(s)").format(count=len(self._maskPrompts))

    def onClearPrompts(self):
        self._maskPrompts = []
        for role in ("positivePoints", "negativePoints", "box"):
            node = getattr(self._parameterNode, role)
            if node is not None:
                node.RemoveAllControlPoints()

    def currentSliceIndex(self):
        """The slice through the prompt point placed last (in whichever view), else the centre of the
        Red view."""
        where = self._lastPoint.position()
        if where is None:
            sliceNode = slicer.app.layoutManager().sliceWidget("Red").mrmlSliceNode()
            where = [sliceNode.GetSliceToRAS().GetElement(r, 3) for r in range(3)]
        return self.logic.sliceIndexAt(self._parameterNode.inputVolume, self._parameterNode.axis, where)

    def setRangeEnd(self, field):
        setattr(self._parameterNode, field, self.currentSliceIndex())

    def onRun(self, direction=None, thisSliceOnly=False, fromThisSlice=False):
        server = self.serverChoice.chosen()  # None: incomplete (and said so); (): this computer
        # on a server, nothing is installed or downloaded here
        if server is None or self._busy() or not server and not (self._installed() and self._weightsAtHand()):
            return
        # thisSliceOnly: a 2D preview from this slice's prompts alone, no propagation.
        # fromThisSlice: clicks placed on this slice correct the last result's mask there, and the
        # volume is re-run from here on, away from the earlier prompts (the rest is kept)
        index = self.currentSliceIndex() if thisSliceOnly or fromThisSlice else None
        try:
            self._startJob(self.logic.startSegment(
                self._parameterNode, segmentId=self.ui.segmentSelector.currentSegmentID(), direction=direction,
                previewSlice=index if thisSliceOnly else None, fromSlice=index if fromThisSlice else None,
                correct=fromThisSlice, masks=self._maskPrompts, server=server))
        except Exception as error:  # bad inputs found on the main thread (no volume, empty prompts ...)
            slicer.util.errorDisplay(_("Could not start segmentation: {message}").format(message=describe(error)))

    def onDownload(self):
        """Fetch the selected registry model into the cache, with progress and Cancel."""
        if self._busy() or not self._installed():
            return
        self._startJob(self.logic.startDownload(self._parameterNode.model))

    def _installed(self) -> bool:
        """The packages are there, or installed now with each step and pip line shown here (shown
        at once: the install runs on the main thread)."""
        live = lambda show: lambda *shown: (show(*shown), slicer.app.processEvents())  # noqa: E731
        showLine = lambda line: setattr(self.ui.statusLabel, "text", line)  # noqa: E731
        return self.logic.ensureDependencies(live(self._showProgressStep), live(showLine))

    def _weightsAtHand(self) -> bool:
        """The first run of a model that is not downloaded offers the download, then goes on (D14);
        a custom checkpoint or a shipped model needs none."""
        p = self._parameterNode
        offer = "" if p.checkpoint else model_choice(p.model).offer
        if not offer:
            return True
        if not slicer.util.confirmOkCancelDisplay(offer, windowTitle=_("Download the model?")):
            return False
        return self._startJob(self.logic.startDownload(p.model)).status is Status.DONE

    def _busy(self) -> bool:
        """A job is running: say so instead of ignoring the click (D23)."""
        if self._job is not None:
            self.ui.statusLabel.text = _("Busy: {text} (press Cancel to stop it first)").format(
                text=self._job.progress[2] or _("a job is running"))
        return self._job is not None

    def _startJob(self, job):
        self._job = job
        self.ui.progressBar.setValue(0)
        self.ui.cancelButton.enabled = True
        waitForJob(job, self._showProgressStep)  # Slicer stays live meanwhile (why: SegmentWithSAM2Qt)
        self._finishJob(job)
        return job

    def _showProgressStep(self, done, total, text):
        self.ui.progressBar.setMaximum(max(total, 1))
        self.ui.progressBar.setValue(min(done, max(total, 1)))
        self.ui.statusLabel.text = text

    def _finishJob(self, job):
        """Main thread, the job ended: write its result (if the scene still holds its nodes)."""
        self._job = None
        self.ui.cancelButton.enabled = False
        with slicer.util.tryWithErrorDisplay(_("Could not write the result."), waitCursor=True):
            outcome = self.logic.finish(job)
            if job.status is Status.FAILED:
                slicer.util.errorDisplay(outcome.message)
            self.ui.statusLabel.text = outcome.message
            if isinstance(job.request, DownloadRequest):
                self.showModelStates()
            if outcome.segmentation_node is not None and self._parameterNode and not self._parameterNode.segmentation:
                self._parameterNode.segmentation = outcome.segmentation_node  # next run writes there too
            if outcome.segment_ids:  # created once, then chosen: the next run replaces it in place
                self.ui.segmentSelector.setCurrentNode(outcome.segmentation_node)
                self.ui.segmentSelector.setCurrentSegmentID(outcome.segment_ids[0])

    def onCancel(self):
        if self._job is not None:
            self._job.cancel()


class SegmentWithSAM2Logic(ScriptedLoadableModuleLogic):
    """Console use: ``SegmentWithSAM2Logic().segment(volumeNode, segmentationNode, prompts, ...)``."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        useSlicerCache()  # here, on the main thread: it reads the application's settings
        self.worker = shared_worker()  # one thread, model and session for the panel and the effect

    def getParameterNode(self):
        return SegmentWithSAM2ParameterNode(super().getParameterNode())

    def shutdown(self):
        self.worker.shutdown()

    def ensureDependencies(self, onStep=None, onLine=None):
        """Install what is missing, after asking; whether everything is importable (errors are shown).
        ``onStep(done, total, text)`` and ``onLine(text)`` report the progress."""
        from SegmentWithSAM2Lib.dependencies import ensure_dependencies

        with slicer.util.tryWithErrorDisplay(_("Installing the Python packages failed."), waitCursor=True):
            return ensure_dependencies(Path(__file__).resolve().parent / "Resources", onStep, onLine)
        return False

    def sliceIndexAt(self, volumeNode, axis, rasPoint):
        from SegmentWithSAM2Lib.mrml.pipeline import slice_index_at

        return slice_index_at(volume_from_node(volumeNode), axis, rasPoint)

    def maskPrompt(self, p, segmentId, sliceIndex):
        from SegmentWithSAM2Lib.mrml.segments import segment_as_mask_prompt

        return segment_as_mask_prompt(p.segmentation, segmentId, volume_from_node(p.inputVolume), sliceIndex)

    def segment(self, volumeNode, segmentationNode, prompts=None, *, positivePoints=None, negativePoints=None,
                box=None, model=DEFAULT_MODEL, checkpoint="", device="auto", window="display", axis="auto",
                direction="both", range=None, segmentName="SAM2 segment", segmentId=None, overlap="overwrite",
                autoStop=None, postprocess=True, preset="none", onProgress=None, shouldCancel=None, server=()):
        """Segment and wait (console and batch use); returns the written segment ids.  Raises the
        error, or Cancelled.  ``onProgress(done, total, text)`` and ``shouldCancel()`` are called here.
        ``server``: (URL, token) of a ``segment-with-sam2 serve`` to run on instead of this computer.
        ``preset="medsam2"``: MedSAM2's published CT pipeline (``autoStop`` None: the preset's default)."""
        from SegmentWithSAM2Lib.mrml.pipeline import prompts_from_nodes

        if prompts is None:
            prompts = prompts_from_nodes(segmentName, 1, positive=positivePoints, negative=negativePoints,
                                         rois=[box] if box else [])
        request, target = segment_request(
            volumeNode, segmentationNode, prompts, model_id=model, checkpoint=checkpoint, device=device,
            window=window, axis=axis, direction=direction, slice_range=range, auto_stop=autoStop,
            postprocess=postprocess, preset=preset, overlap=overlap, segment_name=segmentName, segment_id=segmentId,
            server=server)
        return list(self.worker.run(request, target, onProgress, shouldCancel).segment_ids)

    def startSegment(self, p, *, segmentId="", direction=None, previewSlice=None, fromSlice=None, correct=False,
                     masks=(), server=()):
        """Main thread: read the parameter node and the scene into a request; the worker runs it.
        ``segmentId``: the segment to replace ("": a new one named p.segmentName)."""
        from SegmentWithSAM2Lib.mrml.pipeline import prompts_from_nodes
        from SegmentWithSAM2Lib.mrml.segments import chosen_segment

        segmentId, name, color = chosen_segment(p.segmentation, segmentId, p.segmentName)
        prompts = prompts_from_nodes(name, 1, color, positive=p.positivePoints, negative=p.negativePoints,
                                     rois=[p.box] if p.box else [], masks=masks)
        sliceRange = (p.rangeFirst, p.rangeLast) if p.rangeFirst >= 0 and p.rangeLast >= 0 else None
        return self.worker.submit(*segment_request(
            p.inputVolume, p.segmentation, prompts, model_id=p.model, checkpoint=p.checkpoint, device=p.device,
            window=p.window, axis=p.axis, direction=direction or p.direction, slice_range=sliceRange,
            auto_stop=p.autoStop if p.preset == "none" else None, postprocess=p.postprocess, preset=p.preset,
            overlap=p.overlap, segment_name=name,
            segment_id=segmentId, preview_slice=previewSlice, from_slice=fromSlice, correct=correct, server=server))

    def startDownload(self, modelId):
        """Download a registry model on the worker thread (resumable, verified; Cancel keeps the part)."""
        return self.worker.submit(DownloadRequest(modelId))

    def finish(self, job):
        """Main thread, once the job has ended: write its result; the Outcome (message, segments)."""
        return self.worker.finish(job)


class SegmentWithSAM2Test(ScriptedLoadableModuleTest):
    """Runs in a real Slicer: the shipped micro model segments the demo's synthetic CT from one box,
    through the module's Logic and worker, and the written segment must match the known organ."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_SegmentWithSAM2_micro_box()

    def test_SegmentWithSAM2_micro_box(self):
        import importlib.util

        if importlib.util.find_spec("torch") is None or importlib.util.find_spec("sam2") is None:
            self.delayDisplay("Skipped: PyTorch and sam2 are not installed (the module installs them on first use)")
            return
        from SegmentWithSAM2Lib.core.metrics import dice, middle_slice_box
        from SegmentWithSAM2Lib.demo import in_ras
        from SegmentWithSAM2Lib.mrml.segments import segment_array
        from SegmentWithSAM2Lib.synthetic import demo_ct

        volume, truth = demo_ct()
        volumeNode = slicer.util.addVolumeFromArray(volume.array, ijkToRAS=volume.ijk_to_ras, name="sam2-test")
        segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        prompts = in_ras(middle_slice_box(truth, 1, name="organ"), volume)
        self.delayDisplay("Segmenting the synthetic CT with micro")
        ids = SegmentWithSAM2Logic().segment(volumeNode, segmentationNode, prompts, model="micro", device="cpu",
                                             window="soft-tissue", segmentName="organ")
        self.assertEqual(len(ids), 1)
        self.assertIsNotNone(segmentationNode.GetDisplayNode())  # visible (D3)
        score = dice(segment_array(segmentationNode, ids[0], volume_from_node(volumeNode)), truth)
        self.assertGreater(score, 0.75)  # `make demo` gives 0.805 on the same volume and box
        self.delayDisplay(f"Test passed: Dice {score:.3f} against the known organ")
