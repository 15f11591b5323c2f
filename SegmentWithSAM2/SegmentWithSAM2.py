"""SegmentWithSAM2: the Slicer scripted module (Module, parameter node, Widget, Logic, Test).

The module stays thin: the Widget reads the GUI and calls the Logic; the Logic calls the
library's ``mrml`` layer.  Model work runs on one persistent worker thread (which keeps the
loaded model between clicks); MRML nodes are only touched on the main thread.
"""

import concurrent.futures
import os
import threading
from typing import Annotated

import qt
import slicer
import vtk
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin


class SegmentWithSAM2(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Segment With SAM2")
        self.parent.categories = [_("Segmentation")]
        self.parent.contributors = ["SegmentWithSAM2 developers"]
        self.parent.helpText = _(
            "Segment CT, MRI and PET volumes with SAM2, SAM2.1 and MedSAM2: place positive/negative points or "
            "a box on a slice, and the object is propagated through the neighbouring slices in both directions. "
            "Results are written as segments on the volume's grid, with the settings used stored on each segment.")
        self.parent.acknowledgementText = _(
            "Built on Meta's SAM2 and the MedSAM2 weights of WangLab; the weights keep their own licenses. "
            "Not for clinical use.")


@parameterNodeWrapper
class SegmentWithSAM2ParameterNode:
    inputVolume: slicer.vtkMRMLScalarVolumeNode
    segmentation: slicer.vtkMRMLSegmentationNode
    positivePoints: slicer.vtkMRMLMarkupsFiducialNode
    negativePoints: slicer.vtkMRMLMarkupsFiducialNode
    box: slicer.vtkMRMLMarkupsROINode
    segmentName: str = "SAM2 segment"
    model: str = "medsam2-latest"
    checkpoint: str = ""
    device: Annotated[str, Choice(["auto", "cpu", "cuda", "mps"])] = "auto"
    window: str = "display"
    axis: Annotated[str, Choice(["auto", "axial", "coronal", "sagittal", "i", "j", "k"])] = "auto"
    direction: Annotated[str, Choice(["both", "forward", "backward"])] = "both"
    rangeFirst: int = -1
    rangeLast: int = -1
    autoStop: bool = True
    postprocess: bool = True
    overlap: Annotated[str, Choice(["overwrite", "keep_others"])] = "overwrite"


class SegmentWithSAM2Widget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._maskPrompts = []  # segments used as mask prompts, each on one slice
        self._timer = qt.QTimer()
        self._timer.setInterval(100)
        self._timer.timeout.connect(self.pollJob)

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SegmentWithSAM2.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = SegmentWithSAM2Logic()
        self.ui.modelSelector.addItems(self.logic.modelIds())
        self.ui.modelSelector.currentTextChanged.connect(lambda text: setattr(self._parameterNode, "model", text))
        self.ui.segmentSliceButton.clicked.connect(lambda: self.onRun(thisSliceOnly=True))
        self.ui.propagateButton.clicked.connect(lambda: self.onRun(direction="both"))
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
        self.initializeParameterNode()

    def cleanup(self):
        self.onCancel()
        self.removeObservers()
        if self.logic:
            self.logic.shutdown()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event):
        self.onCancel()
        self.setParameterNode(None)

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")

    def setParameterNode(self, parameterNode):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)

    def placeMarkups(self, role, className):
        """Create the prompt node if needed and start placing points in the slice views."""
        node = getattr(self._parameterNode, role)
        if node is None:
            node = slicer.mrmlScene.AddNewNodeByClass(className, slicer.mrmlScene.GenerateUniqueName(role))
            setattr(self._parameterNode, role, node)
        markupsLogic = slicer.modules.markups.logic()
        markupsLogic.SetActiveList(node)
        markupsLogic.StartPlaceMode(role != "box")  # points: keep placing; box: one ROI

    def onMaskFromSegment(self):
        """The segment named in 'Segment name', on the current slice, becomes a mask prompt."""
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Could not use the segment as a mask prompt.")):
            segmentId = p.segmentation.GetSegmentation().GetSegmentIdBySegmentName(p.segmentName) if p.segmentation else ""
            self._maskPrompts.append(self.logic.maskPrompt(p, segmentId, self.currentSliceIndex()))
            self.ui.statusLabel.text = _("{count} mask prompt(s)").format(count=len(self._maskPrompts))

    def onClearPrompts(self):
        self._maskPrompts = []
        for role in ("positivePoints", "negativePoints", "box"):
            node = getattr(self._parameterNode, role)
            if node is not None:
                node.RemoveAllControlPoints()

    def currentSliceIndex(self):
        sliceNode = slicer.app.layoutManager().sliceWidget("Red").mrmlSliceNode()
        centre = [sliceNode.GetSliceToRAS().GetElement(r, 3) for r in range(3)]
        return self.logic.sliceIndexAt(self._parameterNode.inputVolume, self._parameterNode.axis, centre)

    def setRangeEnd(self, field):
        setattr(self._parameterNode, field, self.currentSliceIndex())

    def onRun(self, direction=None, thisSliceOnly=False, fromThisSlice=False):
        if self._job is not None or not self.logic.ensureDependencies():
            return
        p = self._parameterNode
        options = {"direction": direction or p.direction}
        if p.rangeFirst >= 0 and p.rangeLast >= 0:
            options["sliceRange"] = (p.rangeFirst, p.rangeLast)
        if thisSliceOnly:  # a 2D preview from this slice's prompts alone, no propagation
            options["previewSlice"] = self.currentSliceIndex()
        # fromThisSlice: clicks placed on this slice correct the last result's mask there, and the
        # volume is re-run from here on, away from the earlier prompts (the rest is kept)
        options["correct"] = fromThisSlice
        if fromThisSlice:
            options["fromSlice"] = self.currentSliceIndex()
        with slicer.util.tryWithErrorDisplay(_("Could not start segmentation."), waitCursor=True):
            self._startJob(self.logic.startSegment(p, options, self._maskPrompts))

    def onDownload(self):
        """Fetch the selected registry model into the cache, with progress and Cancel."""
        if self._job is not None or not self.logic.ensureDependencies():
            return
        self._startJob(self.logic.startDownload(self._parameterNode.model))

    def _startJob(self, job):
        self._job = job
        self.ui.progressBar.setValue(0)
        self.ui.cancelButton.enabled = True
        self._timer.start()

    def pollJob(self):
        """Main thread: show progress; when the worker is done, finish the job (write segments...)."""
        done, total, text = self._job.progress
        self.ui.progressBar.setMaximum(max(total, 1))
        self.ui.progressBar.setValue(min(done, max(total, 1)))
        self.ui.statusLabel.text = text
        if not self._job.future.done():
            return
        self._timer.stop()
        job, self._job = self._job, None
        self.ui.cancelButton.enabled = False
        with slicer.util.tryWithErrorDisplay(_("{what} failed; the scene was not changed.").format(what=job.what),
                                             waitCursor=True):
            self.ui.statusLabel.text = job.finish(job)

    def onCancel(self):
        if self._job is not None:
            self._job.cancel.set()


class SegmentWithSAM2Job:
    """Work handed to the worker thread: its future, (done, total, text) progress, a cancel flag,
    and ``finish`` to run on the main thread when it is done."""

    def __init__(self, what, finish):
        self.what = what
        self.finish = finish
        self.progress = (0, 0, "")
        self.cancel = threading.Event()
        self.future = None
        self.context = {}


class SegmentWithSAM2Logic(ScriptedLoadableModuleLogic):
    """Console use: ``SegmentWithSAM2Logic().segment(volumeNode, segmentationNode, prompts, ...)``."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="SegmentWithSAM2")
        self._models = {}
        self._last = None  # (inputs key, result) of the last segmentation, for corrections
        self._sessionKey = self._volumeSession = None  # used on the worker thread only

    def getParameterNode(self):
        return SegmentWithSAM2ParameterNode(super().getParameterNode())

    def shutdown(self):
        self._worker.shutdown(wait=False, cancel_futures=True)

    def modelIds(self):
        from SegmentWithSAM2Lib.core.registry import load_registry

        return list(load_registry())

    def ensureDependencies(self):
        """Install what is missing, after asking; returns whether everything is importable."""
        from SegmentWithSAM2Lib.dependencies import ensure_dependencies

        return ensure_dependencies()

    def loadModel(self, model="medsam2-latest", checkpoint="", device="auto"):
        """The model, loaded once per (id, checkpoint, device) and kept for later runs."""
        from SegmentWithSAM2Lib.core.model import load_model

        _useSlicerCache()
        key = (model, checkpoint, device)
        if key not in self._models:
            # the registry entry gives the config; a checkpoint path, when given, gives the weights
            self._models[key] = load_model(model, checkpoint=checkpoint or None, device=device)
        return self._models[key]

    def sliceIndexAt(self, volumeNode, axis, rasPoint):
        from SegmentWithSAM2Lib.mrml.pipeline import read_inputs, slice_index_at

        return slice_index_at(read_inputs(volumeNode, "none")[0], axis, rasPoint)

    def segment(self, volumeNode, segmentationNode, prompts=None, *, positivePoints=None, negativePoints=None,
                box=None, model="medsam2-latest", checkpoint="", device="auto", window="display", axis="auto",
                direction="both", range=None, segmentName="SAM2 segment", segmentId=None, overlap="overwrite",
                autoStop=True, postprocess=True, onProgress=None, shouldCancel=None):
        """Segment in the calling thread (console and batch use); returns the written segment ids."""
        from SegmentWithSAM2Lib.mrml.pipeline import prompts_from_nodes, segment_volume_node

        if prompts is None:
            prompts = prompts_from_nodes(segmentName, 1, positive=positivePoints, negative=negativePoints,
                                         rois=[box] if box else [])
        return segment_volume_node(
            self.loadModel(model, checkpoint, device), volumeNode, segmentationNode, prompts, window=window,
            axis=axis, direction=direction, slice_range=range, auto_stop=autoStop, postprocess=postprocess,
            segment_ids={1: segmentId} if segmentId else None, overlap=overlap,
            on_progress=onProgress, should_cancel=shouldCancel)

    def maskPrompt(self, p, segmentId, sliceIndex):
        from SegmentWithSAM2Lib.mrml.pipeline import read_inputs
        from SegmentWithSAM2Lib.mrml.segments import segment_as_mask_prompt

        return segment_as_mask_prompt(p.segmentation, segmentId, read_inputs(p.inputVolume, "none")[0], sliceIndex)

    def startSegment(self, p, options, masks=()):
        """Main thread: read the scene, then hand the model work to the worker thread."""
        from SegmentWithSAM2Lib.core.volume import Volume
        from SegmentWithSAM2Lib.mrml.pipeline import prompts_from_nodes, read_inputs, run_engine

        volume, window = read_inputs(p.inputVolume, p.window)
        volume = Volume(volume.array.copy(), volume.ijk_to_ras, volume.metadata)  # the worker's own copy
        prompts = prompts_from_nodes(p.segmentName, 1, positive=p.positivePoints, negative=p.negativePoints,
                                     rois=[p.box] if p.box else [], masks=masks)
        job = SegmentWithSAM2Job(_("Segmentation"), self.finishSegment)
        job.context = {"volumeNode": p.inputVolume, "segmentationNode": p.segmentation, "prompts": prompts,
                       "overlap": p.overlap}
        # a correction refines the last result only if it was made on the same inputs
        key = (p.inputVolume.GetID(), p.inputVolume.GetImageData().GetMTime(), window, p.axis, p.model, p.checkpoint)
        previous = self._last[1] if options.get("correct") and self._last and self._last[0] == key else None

        def work():
            model = self.loadModel(p.model, p.checkpoint, p.device)
            return run_engine(model, volume, prompts, window=window, axis=p.axis, direction=options["direction"],
                              slice_range=options.get("sliceRange"), auto_stop=p.autoStop,
                              postprocess=p.postprocess, should_cancel=job.cancel.is_set,
                              on_progress=lambda done, total, index, direction: setattr(
                                  job, "progress", (done, total, f"{direction} slice {index}: {done} of {total}")),
                              previous=previous, preview_slice=options.get("previewSlice"),
                              from_slice=options.get("fromSlice"),
                              session=self._session(key, model, volume, window, p.axis))

        job.context["key"] = key
        job.future = self._worker.submit(work)
        return job

    def _session(self, key, model, volume, window, axis):
        """The worker's session for these inputs: its cached slice features make corrections and
        previews fast.  A new volume, window, axis or model starts a new one; an edited volume
        changes its node's modified time and starts one too."""
        from SegmentWithSAM2Lib.core.engine import VolumeSession

        if self._sessionKey != key or self._volumeSession.model is not model:
            self._sessionKey, self._volumeSession = key, VolumeSession(model, volume, axis=axis, window=window)
        return self._volumeSession

    def finishSegment(self, job):
        """Main thread: write the worker's result into the segmentation (raises if it failed or was cancelled)."""
        from SegmentWithSAM2Lib.mrml.pipeline import write_segments

        result = job.future.result()
        c = job.context
        self._last = (c["key"], result)
        if c["segmentationNode"] is None:
            c["segmentationNode"] = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        ids = write_segments(result, c["volumeNode"], c["segmentationNode"], c["prompts"], overlap=c["overlap"])
        return _("wrote {count} segment(s)").format(count=len(ids))

    def startDownload(self, modelId):
        """Download a registry model on the worker thread (resumable, verified; Cancel keeps the part)."""
        from SegmentWithSAM2Lib.io.model_cache import download_model

        _useSlicerCache()
        job = SegmentWithSAM2Job(_("Download"), lambda job: _("{path} verified").format(path=job.future.result()))

        def report(p):
            mb = 1 << 20
            job.progress = (p.done // mb, (p.total or 0) // mb,
                            f"{modelId}: {p.done / mb:.0f} / {(p.total or 0) / mb:.0f} MB, {p.bytes_per_second / mb:.1f} MB/s")

        job.future = self._worker.submit(download_model, modelId, on_progress=report, should_cancel=job.cancel.is_set)
        return job


def _useSlicerCache():
    """Checkpoints live in Slicer's cache folder unless $SEGMENTWITHSAM2_CACHE says otherwise."""
    from SegmentWithSAM2Lib.core.registry import CACHE_ENV

    os.environ.setdefault(CACHE_ENV, os.path.join(slicer.app.cachePath, "SegmentWithSAM2"))


class SegmentWithSAM2Test(ScriptedLoadableModuleTest):
    """Runs in a real Slicer: a synthetic volume, a point prompt, a small random model."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_SegmentWithSAM2_point_prompt()

    def test_SegmentWithSAM2_point_prompt(self):
        import numpy as np

        from SegmentWithSAM2Lib.core.model import load_model
        from SegmentWithSAM2Lib.mrml.pipeline import prompts_from_nodes, segment_volume_node
        from SegmentWithSAM2Lib.mrml.segments import segment_array
        from SegmentWithSAM2Lib.mrml.volumes import volume_from_node

        self.delayDisplay("Building a synthetic volume")
        array = np.full((6, 48, 48), -100, np.int16)
        array[1:5, 14:34, 14:34] = 150
        volumeNode = slicer.util.addVolumeFromArray(array, name="sam2-test")
        points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "positive")
        ras = [0.0, 0.0, 0.0, 1.0]
        volumeNode.GetIJKToRASMatrix().MultiplyPoint([24, 24, 3, 1], ras)
        points.AddControlPoint(vtk.vtkVector3d(*ras[:3]))
        segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        model = load_model("medsam2-latest", random_init=True, seed=0, device="cpu", precision="fp32")
        ids = segment_volume_node(model, volumeNode, segmentationNode, prompts_from_nodes("test", 1, positive=points),
                                  window="0,300", auto_stop=False)
        self.assertEqual(len(ids), 1)
        mask = segment_array(segmentationNode, ids[0], volume_from_node(volumeNode))
        self.assertEqual(mask.shape, array.shape)
        self.delayDisplay("Test passed")
