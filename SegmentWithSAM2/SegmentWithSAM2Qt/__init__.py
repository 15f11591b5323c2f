"""Qt helpers shared by the Segment With SAM2 module and its "SAM2" Segment Editor effect."""

import os

import slicer


def waitForJob(job, onProgress):
    """Wait for a worker job in 30 ms GIL-releasing waits, pumping Qt events between them.

    CTK starts PythonQt without releasing the GIL (commontk/CTK
    Libs/Scripting/Python/Core/ctkAbstractPythonManager.cpp, initPythonQt; no Slicer branch calls
    PyEval_SaveThread), so while Slicer sits in its C++ event loop the main thread holds the GIL
    and the worker thread gets it only while Python runs here; Event.wait releases it.
    processEvents keeps the panel live (progress, Cancel, a second click is refused as busy):
    SlicerNNInteractive's pattern (done_event.wait(0.03) + processEvents).
    ``onProgress(done, total, text)`` is called between waits and once at the end."""
    while not job.wait(0.03):
        slicer.app.processEvents()
        onProgress(*job.progress)
    onProgress(*job.progress)


def registerSAM2Effect():
    """Register the "SAM2" Segment Editor effect (Slicer's ScriptedSegmentEditorEffect template's
    way, at startupCompleted); each Segment Editor uses a clone of it."""
    import logging

    import qSlicerSegmentationsEditorEffectsPythonQt as effects
    import SegmentEditorSAM2Lib  # noqa: F401  (first: else the loader stores the file under the package's name)

    source = os.path.join(os.path.dirname(os.path.dirname(__file__)), "SegmentEditorSAM2Lib", "SegmentEditorEffect.py")
    instance = effects.qSlicerSegmentEditorScriptedEffect(None)
    if not instance.setPythonSource(source.replace("\\", "/")):  # False: the file did not load (logged by Slicer)
        logging.error("SegmentWithSAM2: the SAM2 Segment Editor effect could not be loaded from %s", source)
        return
    instance.self().register()


def useSlicerCache():
    """Checkpoints live in Slicer's cache folder unless $SEGMENTWITHSAM2_CACHE says otherwise
    (main thread: slicer.app.cachePath reads the application's settings)."""
    from SegmentWithSAM2Lib.io.model_zoo import use_cache_dir

    use_cache_dir(os.path.join(slicer.app.cachePath, "SegmentWithSAM2"))


class ServerChoice:
    """The panel's "Run on" rows: this computer, or a server's address and token.  They live in
    Slicer's settings for this user, never in the parameter node: a scene file is shared, and a
    token is a credential."""

    RUN_ON, URL, TOKEN = "SegmentWithSAM2/runOn", "SegmentWithSAM2/serverUrl", "SegmentWithSAM2/serverToken"
    SERVER = 1  # runOnComboBox's row "server"

    def __init__(self, ui):
        import qt

        self.ui, settings = ui, qt.QSettings()
        ui.runOnComboBox.currentIndex = max(0, ui.runOnComboBox.findText(str(settings.value(self.RUN_ON, ""))))
        ui.serverUrlLineEdit.text = str(settings.value(self.URL, "") or "")
        ui.serverTokenLineEdit.text = str(settings.value(self.TOKEN, "") or "")
        ui.runOnComboBox.connect("currentIndexChanged(int)", self._changed)
        ui.serverUrlLineEdit.connect("editingFinished()", self._save)
        ui.serverTokenLineEdit.connect("editingFinished()", self._save)
        self._changed()

    def server(self) -> tuple:
        """() to run here, else (URL, token); raises ValueError with what to type when incomplete."""
        if self.ui.runOnComboBox.currentIndex != self.SERVER:
            return ()
        url = self.ui.serverUrlLineEdit.text.strip()
        if not url:
            raise ValueError("Run on is set to server: type the server's address (e.g. http://127.0.0.1:8000 "
                             "through an SSH tunnel) and your token, or choose this computer")
        return url, self.ui.serverTokenLineEdit.text.strip()

    def chosen(self):
        """``server()``, or None after showing what is missing."""
        try:
            return self.server()
        except ValueError as error:
            slicer.util.errorDisplay(str(error))
            return None

    def _changed(self, *_):
        remote = self.ui.runOnComboBox.currentIndex == self.SERVER
        for widget in (self.ui.serverUrlLineEdit, self.ui.serverTokenLineEdit):
            widget.enabled = remote
        for widget in (self.ui.downloadButton, self.ui.checkpointLineEdit, self.ui.deviceComboBox):
            widget.enabled = not remote  # the server has its own models and device
        self._save()

    def _save(self):
        import qt

        settings = qt.QSettings()
        settings.setValue(self.RUN_ON, self.ui.runOnComboBox.currentText)
        settings.setValue(self.URL, self.ui.serverUrlLineEdit.text.strip())
        settings.setValue(self.TOKEN, self.ui.serverTokenLineEdit.text.strip())
