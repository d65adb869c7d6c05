"""MedSeg: interactive labelling of liver CT against a MONAI-Label-compatible server.

This file only holds the Slicer glue: module description, parameter node, GUI wiring, a thin
logic and the self test. Everything else lives in ``MedSegLib`` (the Slicer-free core, tested with
plain pytest) and ``MedSegLib.mrml`` (the MRML layer, tested with slicer-core).

Only ``slicer``, ``qt``, ``ctk`` and ``vtk`` (plus the standard library) are imported at module
level: ``MedSegLib`` needs ``requests`` and ``SimpleITK``, which are checked (and installed after
asking) the first time the module connects, never at import.

Threading: network calls and file work run on one worker thread (``MedSegLib.jobs.JobRunner``);
a ``QTimer`` drains its results on the main thread, where MRML nodes and widgets are updated.
"""

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time

import qt
import slicer
import vtk
from slicer import (
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLMarkupsROINode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
)
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

#: QSettings keys: the last server URL that worked and the annotator name.
SERVER_URL_SETTINGS_KEY = "MedSeg/serverUrl"
USER_SETTINGS_KEY = "MedSeg/user"

#: URL proposed when nothing has been remembered yet.
DEFAULT_SERVER_URL = "http://127.0.0.1:8000"

#: Environment variable naming a running server for the self test...
TEST_SERVER_ENV = "MEDSEG_TEST_SERVER"
#: ...or the command that starts one (default: ``medseg`` on PATH), on synthetic data.
TEST_SERVER_COMMAND_ENV = "MEDSEG_TEST_SERVER_COMMAND"

#: How often the worker's results are applied (ms) and training progress is polled (ms).
DRAIN_INTERVAL_MS = 100
TRAIN_POLL_INTERVAL_MS = 2000


#
# MedSeg
#


class MedSeg(ScriptedLoadableModule):
    """Module description shown in Slicer's module list and Help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MedSeg")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["MedSeg developers (https://github.com/medseg/MedSeg)"]
        self.parent.helpText = _(
            "Interactive labelling of liver CT with a MONAI-Label-compatible segmentation server: "
            "liver, portal vein, hepatic veins, inferior vena cava and tumours.<br>"
            "Connect to a server, run a model on the selected volume, correct the result with "
            "include/exclude points, a box or scribbles, submit the label so that the model can be "
            "retrained, follow the cohort, and build a 3D plan of the segmented structures.<br>"
            'See the <a href="https://github.com/medseg/MedSeg">project page</a> for documentation.'
        )
        self.parent.acknowledgementText = _(
            "MedSeg is an open-source project. It builds on 3D Slicer and follows the MONAI Label "
            "server protocol; we thank both communities."
        )


#
# MedSegParameterNode
#


@parameterNodeWrapper
class MedSegParameterNode:
    """State of the module GUI, saved with the MRML scene.

    serverUrl - base URL of the segmentation server.
    inputVolume - CT volume to segment.
    segmentation - segmentation node that receives the server's labels.
    model - name of the server model chosen in the GUI.
    positivePoints / negativePoints - include / exclude clicks.
    box - markups ROI sent as a bounding box.
    segment - ID of the segment that clicks, boxes and scribbles update.
    """

    serverUrl: str
    inputVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    model: str
    positivePoints: vtkMRMLMarkupsFiducialNode
    negativePoints: vtkMRMLMarkupsFiducialNode
    box: vtkMRMLMarkupsROINode
    segment: str


#
# MedSegWidget
#


class MedSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Module panel: loads Resources/UI/MedSeg.ui and forwards every action to MedSegLogic.

    Each action captures its MRML input on the main thread, runs the network part on the logic's
    worker and applies the answer when the drain timer delivers it.
    """

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._observedPointLists = []

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MedSeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = MedSegLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        # Worker results are applied on the main thread by this timer; training is polled by another.
        self.drainTimer = qt.QTimer()
        self.drainTimer.setInterval(DRAIN_INTERVAL_MS)
        self.drainTimer.connect("timeout()", self.logic.drain)
        self.drainTimer.start()
        self.trainTimer = qt.QTimer()
        self.trainTimer.setInterval(TRAIN_POLL_INTERVAL_MS)
        self.trainTimer.connect("timeout()", self.onTrainPoll)

        self.ui.userLineEdit.text = str(qt.QSettings().value(USER_SETTINGS_KEY, "") or "")

        # Server
        self.ui.connectButton.connect("clicked(bool)", self.onConnectButton)
        self.ui.serverUrlLineEdit.connect("returnPressed()", self.onConnectButton)
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelChanged)
        # Segment
        self.ui.autoSegmentButton.connect("clicked(bool)", self.onAutoButton)
        self.ui.nextSampleButton.connect("clicked(bool)", self.onNextSampleButton)
        self.ui.submitButton.connect("clicked(bool)", self.onSubmitButton)
        self.ui.undoButton.connect("clicked(bool)", self.onUndoButton)
        self.ui.segmentComboBox.connect("currentIndexChanged(int)", self.onSegmentChanged)
        # Interact
        self.ui.applyBoxButton.connect("clicked(bool)", self.onApplyBoxButton)
        self.ui.paintScribblesButton.connect("clicked(bool)", self.onPaintScribblesButton)
        self.ui.sendScribblesButton.connect("clicked(bool)", self.onSendScribblesButton)
        self.ui.fillSlicesButton.connect("clicked(bool)", self.onFillSlicesButton)
        # Cohort and training
        self.ui.refreshCohortButton.connect("clicked(bool)", self.onRefreshCohortButton)
        self.ui.uncertaintyButton.connect("clicked(bool)", self.onUncertaintyButton)
        self.ui.trainButton.connect("clicked(bool)", self.onTrainButton)
        # 3D plan
        self.ui.reconButton.connect("clicked(bool)", self.onReconButton)
        self.ui.exportButton.connect("clicked(bool)", self.onExportButton)
        # Progress
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.ui.progressBar.visible = False
        self.ui.cancelButton.visible = False

        self._showDisconnected()
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.drainTimer.stop()
        self.trainTimer.stop()
        self.removeObservers()
        if self.logic:
            self.logic.shutdown()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtonStates)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.serverUrl:
            self._parameterNode.serverUrl = savedServerUrl()
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode:
                self._parameterNode.inputVolume = firstVolumeNode
        self.logic.ensureInteractionNodes(self._parameterNode)
        self.ui.positivePointsPlaceWidget.setCurrentNode(self._parameterNode.positivePoints)
        self.ui.negativePointsPlaceWidget.setCurrentNode(self._parameterNode.negativePoints)
        self.ui.boxPlaceWidget.setCurrentNode(self._parameterNode.box)
        self._observePointLists()

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtonStates)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtonStates)
        self._updateButtonStates()

    def _observePointLists(self) -> None:
        """Send clicks as soon as a point is placed (include or exclude list)."""
        for node in self._observedPointLists:
            self.removeObserver(node, slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent, self.onPointPlaced)
        self._observedPointLists = [n for n in (self._parameterNode.positivePoints, self._parameterNode.negativePoints) if n]
        for node in self._observedPointLists:
            self.addObserver(node, slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent, self.onPointPlaced)

    def _updateButtonStates(self, caller=None, event=None) -> None:
        p = self._parameterNode
        hasUrl = bool(p and p.serverUrl.strip())
        connected = bool(self.logic and self.logic.isConnected)
        hasVolume = bool(p and p.inputVolume)
        self.ui.connectButton.enabled = hasUrl
        self.ui.connectButton.toolTip = (
            _("Connect to the server and list its models.") if hasUrl else _("Enter the server URL first.")
        )
        for widget in (self.ui.autoSegmentButton, self.ui.submitButton, self.ui.reconButton,
                       self.ui.positivePointsPlaceWidget, self.ui.negativePointsPlaceWidget,
                       self.ui.boxPlaceWidget, self.ui.applyBoxButton, self.ui.paintScribblesButton,
                       self.ui.uncertaintyButton):
            widget.enabled = connected and hasVolume
        hasEngine = connected and hasVolume and bool(self.logic.engineModel())
        self.ui.sendScribblesButton.enabled = hasEngine
        self.ui.fillSlicesButton.enabled = hasEngine
        for widget in (self.ui.nextSampleButton, self.ui.trainButton, self.ui.refreshCohortButton):
            widget.enabled = connected
        self.ui.undoButton.enabled = bool(self.logic and self.logic.canUndo)
        self.ui.undoButton.toolTip = _("Undo: {what}").format(what=self.logic.undoLabel) if self.logic and self.logic.canUndo else _("Nothing to undo")
        self.ui.exportButton.enabled = bool(self.logic and self.logic.hasPlan)

    #
    # Running jobs
    #

    def _runJob(self, title: str, work, onDone) -> None:
        """Run ``work(job)`` on the worker; ``onDone(result)`` later on the main thread."""
        if self.logic.runner.busy:
            self.ui.serverStatusLabel.text = _("Busy: wait for the running request or cancel it.")
            return
        self.ui.progressBar.visible = True
        self.ui.progressBar.setRange(0, 0)  # busy indicator until the job reports progress
        self.ui.progressBar.setFormat(title)
        self.ui.cancelButton.visible = True
        self.ui.cancelButton.enabled = True

        def done(result):
            self._hideProgress()
            with slicer.util.tryWithErrorDisplay(_("MedSeg: {title} failed.").format(title=title)):
                onDone(result)
            self._updateButtonStates()

        def failed(exc):
            self._hideProgress()
            slicer.util.errorDisplay(self.logic.describeError(exc), windowTitle=_("MedSeg: {title}").format(title=title))
            self._updateButtonStates()

        def progress(fraction, text):
            self.ui.progressBar.setRange(0, 100)
            self.ui.progressBar.value = int(fraction * 100)
            if text:
                self.ui.progressBar.setFormat(f"{title}: {text}")

        self.logic.runner.submit(title, work, done, failed, progress)

    def _hideProgress(self) -> None:
        self.ui.progressBar.visible = False
        self.ui.cancelButton.visible = False

    def onCancelButton(self) -> None:
        self.logic.runner.cancel_all()
        self._hideProgress()
        self.ui.serverStatusLabel.text = _("Cancelled (the server may still finish the request).")

    def _inputs(self, needSegmentation: bool = True):
        """The input volume and (created when missing) segmentation node."""
        p = self._parameterNode
        if not p.inputVolume:
            raise ValueError(_("Select an input volume first."))
        if needSegmentation and not p.segmentation:
            p.segmentation = self.logic.newSegmentation(p.inputVolume)
        return p.inputVolume, p.segmentation

    #
    # Server section
    #

    def onConnectButton(self) -> None:
        if not self.logic.ensureDependencies(ask=True):
            return
        url = self.ui.serverUrlLineEdit.text
        token = self.ui.tokenLineEdit.text.strip() or None
        user = self.ui.userLineEdit.text.strip() or None
        try:
            url = self.logic.normalizeServerUrl(url)
        except ValueError as exc:
            slicer.util.errorDisplay(str(exc))
            return
        self.ui.serverStatusLabel.text = _("Connecting...")
        self.logic.disconnect()
        self._updateButtonStates()

        def connected(server):
            qt.QSettings().setValue(SERVER_URL_SETTINGS_KEY, self.logic.serverUrl)
            qt.QSettings().setValue(USER_SETTINGS_KEY, user or "")
            if self._parameterNode:
                self._parameterNode.serverUrl = self.logic.serverUrl
            self._showConnected(self.logic.serverInfo)

        def work(job):
            return self.logic.connect(url, token=token, user=user)

        self._runJob(_("Connect"), work, connected)

    def onModelChanged(self, index: int = -1) -> None:
        if self._parameterNode and self.ui.modelComboBox.currentText:
            self._parameterNode.model = self.ui.modelComboBox.currentText
            self.logic.setModel(self.ui.modelComboBox.currentText)
            self.ui.modelVersionLabel.text = _("Model version: {v}").format(v=self.logic.modelVersion())

    def _showConnected(self, info: dict) -> None:
        name = self.logic.serverName(info)
        models = self.logic.autoModels() or self.logic.modelNames(info)
        if models:
            self.ui.serverStatusLabel.text = _("Connected to {name}. Models: {models}").format(
                name=name, models=", ".join(models)
            )
        else:
            self.ui.serverStatusLabel.text = _("Connected to {name}, but it offers no models.").format(name=name)
        wanted = self._parameterNode.model if self._parameterNode else ""
        combo = self.ui.modelComboBox
        wasBlocked = combo.blockSignals(True)
        combo.clear()
        for model in models:
            combo.addItem(model)
        if wanted in models:
            combo.currentIndex = models.index(wanted)
        elif self.logic.defaultModel() in models:
            combo.currentIndex = models.index(self.logic.defaultModel())
        combo.blockSignals(wasBlocked)
        combo.enabled = bool(models)
        self.onModelChanged()
        self._updateButtonStates()
        self.onRefreshCohortButton()

    def _showDisconnected(self) -> None:
        self.ui.serverStatusLabel.text = _("Not connected")
        self.ui.modelComboBox.clear()
        self.ui.modelComboBox.enabled = False
        self._updateButtonStates()

    #
    # Segment section
    #

    def onAutoButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Auto segmentation failed."), waitCursor=True):
            volume, segmentation = self._inputs()
            captured = self.logic.controller.capture_volume(volume)
            model = self._parameterNode.model

            def apply(answer):
                self.logic.controller.apply_auto(answer, volume, segmentation)
                self._refreshSegments(segmentation)

            self._runJob(_("Auto"), lambda job: self.logic.controller.fetch_auto(captured, model), apply)

    def onPointPlaced(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p and caller is not None:
            shift = bool(qt.QApplication.keyboardModifiers() & qt.Qt.ShiftModifier)
            self.logic.routePlacedPoint(caller, p.positivePoints, p.negativePoints, shift)
        if not self.logic.isConnected or self.logic.runner.busy:
            return  # the point stays and goes with the next interaction
        self._sendInteraction(withBox=False)

    def onApplyBoxButton(self) -> None:
        self._sendInteraction(withBox=True)

    def _sendInteraction(self, withBox: bool) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not send the interaction."), waitCursor=True):
            p = self._parameterNode
            volume, segmentation = self._inputs()
            segment = p.segment or self.logic.controller.state.segment or "liver"
            interaction = self.logic.controller.capture_interaction(
                volume, p.positivePoints, p.negativePoints, p.box if withBox else None, segment
            )
            captured = self.logic.controller.capture_volume(volume)

            def apply(answer):
                count = self.logic.controller.apply_interaction(answer, volume, segmentation, segment)
                status = _("{segment}: {n} voxels").format(segment=segment, n=count)
                if answer.from_model:
                    status += " " + _("(started from {model})").format(model=answer.from_model)
                self.ui.interactStatusLabel.text = status
                self._refreshSegments(segmentation)

            self._runJob(_("Interaction"), lambda job: self.logic.controller.fetch_interaction(captured, interaction), apply)

    def onPaintScribblesButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not prepare the scribbles."), waitCursor=True):
            volume, segmentation = self._inputs()
            self.logic.openScribbleEditor(volume, segmentation)

    def onSendScribblesButton(self) -> None:
        self._sendToEngine(_("Scribbles"), self.logic.controller.capture_scribbles)

    def onFillSlicesButton(self) -> None:
        self._sendToEngine(_("Fill between slices"), self.logic.controller.capture_slices)

    def _sendToEngine(self, title: str, capture) -> None:
        """Scribbles or sparse slices of the selected segment -> the server's engine -> the segment."""
        with slicer.util.tryWithErrorDisplay(_("MedSeg: {title} failed.").format(title=title), waitCursor=True):
            volume, segmentation = self._inputs()
            segment = self._parameterNode.segment or self.logic.controller.state.segment or "liver"
            request = capture(segmentation, volume, segment)
            captured = self.logic.controller.capture_volume(volume)

            def apply(answer):
                count = self.logic.controller.apply_engine(answer, volume, segmentation, request)
                self.ui.interactStatusLabel.text = _("{segment}: {n} voxels").format(segment=segment, n=count)
                self._refreshSegments(segmentation)

            self._runJob(title, lambda job: self.logic.controller.fetch_engine(captured, request), apply)

    def onUndoButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Nothing to undo.")):
            what = self.logic.controller.undo(self._parameterNode.segmentation)
            self.ui.interactStatusLabel.text = _("Undone: {what}").format(what=what)
            self._refreshSegments(self._parameterNode.segmentation)
        self._updateButtonStates()

    def onSegmentChanged(self, index: int = -1) -> None:
        segmentId = self.ui.segmentComboBox.itemData(index) if index >= 0 else None
        if segmentId and self._parameterNode:
            self._parameterNode.segment = segmentId
            self.logic.controller.state.segment = segmentId

    def _refreshSegments(self, segmentation) -> None:
        combo = self.ui.segmentComboBox
        wasBlocked = combo.blockSignals(True)
        combo.clear()
        current = self._parameterNode.segment if self._parameterNode else ""
        if segmentation:
            seg = segmentation.GetSegmentation()
            for i in range(seg.GetNumberOfSegments()):
                segmentId = seg.GetNthSegmentID(i)
                combo.addItem(seg.GetSegment(segmentId).GetName(), segmentId)
                if segmentId == current:
                    combo.currentIndex = i
        combo.blockSignals(wasBlocked)
        self.onSegmentChanged(combo.currentIndex)
        self._updateButtonStates()

    def onSubmitButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Submit failed."), waitCursor=True):
            volume, segmentation = self._inputs()
            captured = self.logic.controller.capture_volume(volume)
            label = self.logic.controller.capture_label(segmentation, volume)

            def saved(result):
                self.logic.controller.remember_image_id(volume, result["image"])
                self.ui.submitStatusLabel.text = self.logic.describeSaved(result)
                self.onRefreshCohortButton()

            self._runJob(_("Submit"), lambda job: self.logic.controller.fetch_submit(captured, label), saved)

    def onNextSampleButton(self) -> None:
        def loaded(fetched):
            if fetched is None:
                slicer.util.infoDisplay(_("Every case of the cohort is labelled."))
                return
            node = self.logic.controller.apply_next_sample(fetched)
            self._parameterNode.inputVolume = node
            self._parameterNode.segmentation = self.logic.newSegmentation(node)
            for points in (self._parameterNode.positivePoints, self._parameterNode.negativePoints):
                if points:
                    points.RemoveAllControlPoints()
            slicer.util.setSliceViewerLayers(background=node, foreground=None, fit=True)
            self.ui.sampleInfoLabel.text = _("Case {id}: {why}").format(
                id=fetched[0].image_id, why=fetched[0].why or _("no reason given")
            )
            self._refreshSegments(self._parameterNode.segmentation)

        self._runJob(_("Next sample"), lambda job: self.logic.controller.fetch_next_sample(), loaded)

    #
    # Cohort and training
    #

    def onRefreshCohortButton(self) -> None:
        def show(cohort):
            self.ui.cohortProgressBar.setRange(0, max(cohort.total, 1))
            self.ui.cohortProgressBar.value = cohort.labelled
            self.ui.cohortLabel.text = cohort.summary

        self._runJob(_("Cohort"), lambda job: self.logic.controller.fetch_cohort(), show)

    def onUncertaintyButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not load the uncertainty map."), waitCursor=True):
            volume, _segmentation = self._inputs(needSegmentation=False)
            imageId = self.logic.imageIdOf(volume)
            if not imageId:
                raise ValueError(_("This volume is not on the server yet: run Auto or Submit first."))

            def show(path):
                if path is None:
                    slicer.util.infoDisplay(_("The server has no uncertainty map for this case yet."))
                    return
                self.logic.showUncertainty(path, volume)

            self._runJob(_("Uncertainty"), lambda job: self.logic.controller.fetch_uncertainty(imageId), show)

    def onTrainButton(self) -> None:
        model = self._parameterNode.model

        def started(record):
            self.ui.trainStatusLabel.text = _("Training started")
            self.trainTimer.start()

        self._runJob(_("Train"), lambda job: self.logic.controller.fetch_train_start(model), started)

    def onTrainPoll(self) -> None:
        if self.logic.runner.busy:
            return

        def show(progress):
            self.ui.trainProgressBar.value = int(progress.fraction * 100)
            self.ui.trainStatusLabel.text = progress.text
            if not progress.running:
                self.trainTimer.stop()
                self._runJob(_("Training history"), lambda job: self.logic.refreshAfterTraining(), self._showHistory)

        self.logic.runner.submit("train progress", lambda job: self.logic.controller.fetch_train_progress(), show)

    def _showHistory(self, history) -> None:
        lines = [f"{row['model']}: {row['status']} {row['end'] or ''}" for row in history[-5:]]
        self.ui.trainHistoryLabel.text = "\n".join(lines)
        self.ui.modelVersionLabel.text = _("Model version: {v}").format(v=self.logic.modelVersion())

    #
    # 3D plan
    #

    def onReconButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("3D plan failed."), waitCursor=True):
            volume, segmentation = self._inputs()
            captured = self.logic.controller.capture_volume(volume)
            label = self.logic.controller.capture_label(segmentation, volume)
            labelOrNone = label if self.logic.hasSegments(segmentation) else None

            def show(bundle):
                plan = self.logic.applyPlan(bundle, volume, segmentation)
                self._showMeasures(plan.table)

            self._runJob(_("3D plan"), lambda job: self.logic.controller.fetch_recon(captured, labelOrNone), show)

    def _showMeasures(self, tableNode) -> None:
        from MedSegLib.mrml.tables import table_rows

        rows = table_rows(tableNode)
        table = self.ui.measuresTable
        table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                table.setItem(r, c, qt.QTableWidgetItem(value))
        self._updateButtonStates()

    def onExportButton(self) -> None:
        folder = qt.QFileDialog.getExistingDirectory(None, _("Export the 3D plan to"))
        if not folder:
            return
        with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=True):
            paths = self.logic.controller.export_plan(folder, self.ui.exportFormatComboBox.currentText)
            slicer.util.infoDisplay(_("Wrote {n} files to {folder}").format(n=len(paths), folder=folder))


#
# MedSegLogic
#


def savedServerUrl() -> str:
    """The last server URL that connected successfully, or the default one."""
    value = qt.QSettings().value(SERVER_URL_SETTINGS_KEY, DEFAULT_SERVER_URL)
    return str(value or DEFAULT_SERVER_URL)


class MedSegLogic(ScriptedLoadableModuleLogic):
    """Thin adapter between the module and ``MedSegLib.mrml.controller.MedSegController``.

    Usable without the GUI, e.g. from the Python console::

        logic = slicer.util.getModuleLogic("MedSeg")
        logic.connect("http://127.0.0.1:8000")
        logic.autoSegment(volumeNode, segmentationNode)
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        from MedSegLib.jobs import JobRunner  # standard library only

        self.runner = JobRunner()
        self._controller = None
        self.serverUrl = ""
        self.serverInfo = {}

    def getParameterNode(self):
        return MedSegParameterNode(super().getParameterNode())

    def shutdown(self) -> None:
        self.runner.shutdown()

    def drain(self) -> None:
        """Apply the worker's results (called by the widget's QTimer on the main thread)."""
        self.runner.drain()

    # ----------------------------------------------------------- dependencies
    def requirements(self) -> list:
        from MedSegLib.deps import read_requirements

        return read_requirements(self.resourcePath("requirements.txt"))

    def resourcePath(self, relative: str) -> str:
        return os.path.join(os.path.dirname(__file__), "Resources", relative)

    def ensureDependencies(self, ask: bool = True) -> bool:
        """Install missing Python packages after asking (never at import). True when all are there."""
        from MedSegLib.deps import missing

        needed = missing(self.requirements())
        if not needed:
            return True
        if ask and not slicer.util.confirmOkCancelDisplay(
            _("MedSeg needs these Python packages: {pkgs}. Install them now?").format(pkgs=", ".join(needed))
        ):
            return False
        slicer.util.pip_install(needed)
        return not missing(self.requirements())

    # -------------------------------------------------------------- connection
    @property
    def controller(self):
        if self._controller is None:
            from MedSegLib.mrml.controller import MedSegController

            workdir = os.path.join(slicer.app.temporaryPath, "MedSeg")
            self._controller = MedSegController(slicer.mrmlScene, workdir)
        return self._controller

    @property
    def isConnected(self) -> bool:
        return self._controller is not None and self._controller.client is not None

    @staticmethod
    def normalizeServerUrl(url: str) -> str:
        """Strip blanks and trailing slashes; assume http:// when no scheme is given."""
        url = (url or "").strip().rstrip("/")
        if not url:
            raise ValueError(_("No server URL given. Enter one such as {url}.").format(url=DEFAULT_SERVER_URL))
        if "://" not in url:
            url = "http://" + url
        return url

    def connect(self, url: str, timeout: float = 30.0, token=None, user=None) -> dict:
        """Connect to the server at ``url`` and return its ``/info`` description (worker-safe)."""
        self.disconnect()
        serverUrl = self.normalizeServerUrl(url)
        server = self.controller.connect(serverUrl, token=token, user=user, timeout=timeout)
        self.serverUrl = serverUrl
        self.serverInfo = dict(server.raw)
        logging.info(f"MedSeg: connected to {serverUrl} ({server.title})")
        return self.serverInfo

    def disconnect(self) -> None:
        if self._controller is not None:
            self._controller.disconnect()
        self.serverUrl = ""
        self.serverInfo = {}

    @staticmethod
    def serverName(info: dict) -> str:
        name = str(info.get("name") or _("unnamed server"))
        version = info.get("version")
        return f"{name} {version}" if version else name

    @staticmethod
    def modelNames(info: dict) -> list:
        models = info.get("models") or {}
        if isinstance(models, dict):
            return [str(name) for name in models]
        return [str(m.get("name") if isinstance(m, dict) else m) for m in models if m]

    def autoModels(self) -> list:
        """Models for "Auto" (the interactive ones are used for clicks)."""
        server = self.controller.state.server
        return server.auto_models() if server else []

    def defaultModel(self) -> str:
        return self.controller.state.model if self._controller else ""

    def setModel(self, model: str) -> None:
        if self._controller is not None:
            self._controller.state.model = model

    def modelVersion(self) -> str:
        state = self.controller.state
        return state.server.model_version(state.model) if state.server and state.model else ""

    def engineModel(self) -> str:
        """The server's interactive engine (scribbles, sparse slices); "" when it has none."""
        return self._controller.engine_model() if self.isConnected else ""

    def refreshAfterTraining(self) -> list:
        """Worker: re-read ``/info/`` (new model version) and the training history."""
        from MedSegLib.workflow import ServerDescription

        controller = self.controller
        controller.state.server = ServerDescription.from_info(controller.client.info())
        return controller.fetch_train_history()

    @staticmethod
    def describeError(exc: BaseException) -> str:
        """A message for the user: what failed and what to do."""
        from MedSegLib.errors import ClientError, ServerError, ServerUnavailable
        from MedSegLib.workflow import IncompatibleServer

        if isinstance(exc, ServerUnavailable):
            return _("The MedSeg server cannot be reached. Check that it is running and the URL.\n\n{e}").format(e=exc)
        if isinstance(exc, ClientError) and exc.status in (401, 403):
            return _("The server refused access (wrong or missing token).\n\n{e}").format(e=exc.detail)
        if isinstance(exc, ClientError):
            return _("The server refused the request: {e}").format(e=exc.detail)
        if isinstance(exc, ServerError):
            return _("The server failed: {e}").format(e=exc.detail)
        if isinstance(exc, IncompatibleServer):
            return _("This server is not compatible with MedSeg: {e}").format(e=exc)
        return str(exc) or exc.__class__.__name__

    @staticmethod
    def describeSaved(saved: dict) -> str:
        return _("Saved {tag} label version {version} of {image} by {user}").format(
            tag=saved.get("tag", "final"), version=saved.get("version", "?"),
            image=saved.get("image", "?"), user=saved.get("user", "?"),
        )

    # ---------------------------------------------------------------- nodes
    def ensureInteractionNodes(self, parameterNode) -> None:
        """Include/exclude point lists (green/red) and the box ROI, created once per scene."""
        specs = (("positivePoints", "vtkMRMLMarkupsFiducialNode", "MedSeg include", (0.2, 0.9, 0.2)),
                 ("negativePoints", "vtkMRMLMarkupsFiducialNode", "MedSeg exclude", (0.9, 0.2, 0.2)),
                 ("box", "vtkMRMLMarkupsROINode", "MedSeg box", (0.9, 0.8, 0.2)))
        for attribute, cls, name, color in specs:
            if getattr(parameterNode, attribute) is None:
                node = slicer.mrmlScene.AddNewNodeByClass(cls, name)
                node.CreateDefaultDisplayNodes()
                if node.GetDisplayNode():
                    node.GetDisplayNode().SetSelectedColor(*color)
                setattr(parameterNode, attribute, node)

    def newSegmentation(self, volumeNode):
        node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{volumeNode.GetName()} segmentation")
        node.CreateDefaultDisplayNodes()
        node.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
        return node

    @staticmethod
    def hasSegments(segmentationNode) -> bool:
        return bool(segmentationNode and segmentationNode.GetSegmentation().GetNumberOfSegments())

    def imageIdOf(self, volumeNode) -> str:
        from MedSegLib.mrml.controller import IMAGE_ID_ATTRIBUTE

        return volumeNode.GetAttribute(IMAGE_ID_ATTRIBUTE) or ""

    @property
    def canUndo(self) -> bool:
        return self._controller is not None and len(self._controller.state.undo) > 0

    @property
    def undoLabel(self) -> str:
        return self._controller.state.undo.next_label if self._controller else ""

    @property
    def hasPlan(self) -> bool:
        return self._controller is not None and self._controller.plan is not None

    @staticmethod
    def routePlacedPoint(pointList, positiveNode, negativeNode, shift: bool) -> bool:
        """A point placed in the include list with Shift held moves to the exclude list; True if it moved."""
        from MedSegLib.interactions import click_is_negative
        from MedSegLib.mrml.markups import move_last_point

        if pointList is not positiveNode or negativeNode is None:
            return False
        if not click_is_negative("include", shift):
            return False
        return move_last_point(positiveNode, negativeNode)

    def openScribbleEditor(self, volumeNode, segmentationNode) -> None:
        """Add the two scribble segments and open the Segment Editor's Paint effect on them."""
        from MedSegLib.mrml.segments import add_scribble_segments

        ids = add_scribble_segments(segmentationNode, volumeNode)
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.modules.SegmentEditorWidget.editor
        editor.setSegmentationNode(segmentationNode)
        editor.setSourceVolumeNode(volumeNode)
        editor.setCurrentSegmentID(ids[0])
        editor.setActiveEffectByName("Paint")

    def showUncertainty(self, path, volumeNode):
        """The uncertainty map as a coloured foreground over the slices."""
        node = self.controller.apply_uncertainty(path, volumeNode)
        colorId = "vtkMRMLColorTableNodeFileColdToHotRainbow.txt"
        if slicer.mrmlScene.GetNodeByID(colorId):
            node.GetDisplayNode().SetAndObserveColorNodeID(colorId)
        slicer.util.setSliceViewerLayers(foreground=node, foregroundOpacity=0.4)
        return node

    def applyPlan(self, bundle, volumeNode, segmentationNode):
        """Main thread: the server's reconstruction, or a local plan when the server has none."""
        if bundle is None:
            logging.info("MedSeg: the server has no /recon; building the plan from the segmentation")
            return self.controller.local_plan(segmentationNode, volumeNode)
        return self.controller.apply_recon(bundle, volumeNode)

    # -------------------------------------------- synchronous (scripts, test)
    def autoSegment(self, volumeNode, segmentationNode, model=None) -> list:
        return self.controller.auto(volumeNode, segmentationNode, model)

    def applyClicks(self, volumeNode, segmentationNode, positiveNode, negativeNode, segment="", roiNode=None) -> int:
        return self.controller.interact(volumeNode, segmentationNode, positiveNode, negativeNode, roiNode, segment)

    def submit(self, volumeNode, segmentationNode) -> dict:
        return self.controller.submit(volumeNode, segmentationNode)

    def nextSample(self, strategy=None):
        return self.controller.next_sample(strategy)

    def trainAndWait(self, model=None, timeout: float = 300.0):
        """Start training and poll until it ends (scripts and the self test; the GUI polls with a timer)."""
        self.controller.fetch_train_start(model)
        deadline = time.monotonic() + timeout
        progress = self.controller.fetch_train_progress()
        while progress.running and time.monotonic() < deadline:
            time.sleep(0.5)
            progress = self.controller.fetch_train_progress()
        return progress

    def plan(self, volumeNode, segmentationNode):
        controller = self.controller
        label = controller.capture_label(segmentationNode, volumeNode)
        bundle = controller.fetch_recon(controller.capture_volume(volumeNode), label)
        return self.applyPlan(bundle, volumeNode, segmentationNode)


#
# MedSegTest
#


class TestServer:
    """The server the self test talks to: ``$MEDSEG_TEST_SERVER``, or one started here on synthetic data."""

    def __init__(self) -> None:
        self.url = os.environ.get(TEST_SERVER_ENV, "").strip()
        self.process = None
        self.folder = None

    @staticmethod
    def command() -> list:
        configured = os.environ.get(TEST_SERVER_COMMAND_ENV, "").strip()
        if configured:
            return configured.split()
        found = shutil.which("medseg")
        return [found] if found else []

    @property
    def available(self) -> bool:
        return bool(self.url or self.command())

    def __enter__(self) -> "TestServer":
        if self.url:
            return self
        import SimpleITK as sitk

        from MedSegLib.synthetic import synthetic_ct

        self.folder = tempfile.mkdtemp(prefix="medseg-selftest-")
        for i in range(3):
            image, _label = synthetic_ct(seed=i)
            sitk.WriteImage(image, os.path.join(self.folder, f"synthetic_{i:03d}.nii.gz"), True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.process = subprocess.Popen(
            [*self.command(), "serve", "--studies", self.folder, "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self.url = f"http://127.0.0.1:{port}"
        import requests

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the test server exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                if requests.get(self.url + "/info/", timeout=2).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.25)
        raise RuntimeError("the test server did not start within 60 s")

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


_NO_TEST_SERVER_MESSAGE = (
    f"Server test skipped: set {TEST_SERVER_ENV} to the URL of a running MedSeg server, or put the "
    f"'medseg' command on PATH (or in {TEST_SERVER_COMMAND_ENV}) so the test can start one."
)


class MedSegTest(ScriptedLoadableModuleTest):
    """Self test, run by ctest and by the module's "Reload and Test" button."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_parameter_node()
        self.setUp()
        self.test_empty_url_rejected()
        server = TestServer()
        if not server.available:
            self.delayDisplay(_NO_TEST_SERVER_MESSAGE)  # skipTest would report a failure in "Reload and Test"
            return
        with server:
            self.setUp()
            self.test_full_workflow(server.url)

    def test_parameter_node(self) -> None:
        self.delayDisplay("Parameter node round trip")
        parameterNode = MedSegLogic().getParameterNode()
        volume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        parameterNode.serverUrl = DEFAULT_SERVER_URL
        parameterNode.inputVolume = volume
        parameterNode.segmentation = segmentation
        parameterNode.model = "liver"
        parameterNode.segment = "portal_vein"
        self.assertEqual(parameterNode.serverUrl, DEFAULT_SERVER_URL)
        self.assertEqual(parameterNode.inputVolume.GetID(), volume.GetID())
        self.assertEqual(parameterNode.segmentation.GetID(), segmentation.GetID())
        self.assertEqual(parameterNode.model, "liver")
        self.assertEqual(parameterNode.segment, "portal_vein")

    def test_empty_url_rejected(self) -> None:
        self.delayDisplay("Empty server URL is rejected")
        logic = MedSegLogic()
        with self.assertRaises(ValueError):
            logic.connect("   ")
        self.assertFalse(logic.isConnected)
        self.assertEqual(MedSegLogic.normalizeServerUrl(" localhost:8000/ "), "http://localhost:8000")
        logic.shutdown()

    def test_full_workflow(self, url: str) -> None:
        """Connect, Auto, include/exclude clicks, undo, Submit, cohort, Next sample, Train, 3D plan, export."""
        from MedSegLib.mrml import volumes
        from MedSegLib.mrml.segments import segment_mask
        from MedSegLib.synthetic import inside_point, synthetic_ct

        logic = MedSegLogic()
        try:
            self.delayDisplay(f"Connecting to {url}")
            info = logic.connect(url, user="selftest")
            self.assertTrue(logic.isConnected)
            self.assertTrue(logic.modelNames(info), f"server at {url} lists no models")

            self.delayDisplay("Auto on a local volume (uploaded because the server lacks it)")
            image, truth = synthetic_ct(seed=42)
            volume = volumes.add_volume(slicer.mrmlScene, image, "selftest case")
            segmentation = logic.newSegmentation(volume)
            segmentIds = logic.autoSegment(volume, segmentation)
            self.assertIn("liver", segmentIds)
            self.assertGreater(segment_mask(segmentation, "liver", volume).sum(), 500)

            self.delayDisplay("Include and exclude clicks, undo")
            i, j, k = inside_point(truth)
            x, y, z = image.TransformIndexToPhysicalPoint((i, j, k))
            include = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "include")
            include.AddControlPoint(-x, -y, z)  # LPS -> RAS
            count = logic.applyClicks(volume, segmentation, include, None, "liver")
            self.assertGreater(count, 0)
            self.assertTrue(segment_mask(segmentation, "liver", volume)[k, j, i])
            exclude = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "exclude")
            exclude.AddControlPoint(-x, -y, z)
            include.RemoveAllControlPoints()
            self.assertEqual(logic.applyClicks(volume, segmentation, include, exclude, "liver"), 0)
            logic.controller.undo(segmentation)
            self.assertEqual(segment_mask(segmentation, "liver", volume).sum(), count)

            self.delayDisplay("Submit")
            saved = logic.submit(volume, segmentation)
            self.assertGreaterEqual(saved["version"], 1)
            self.assertGreaterEqual(logic.controller.fetch_cohort().labelled, 1)

            self.delayDisplay("Next sample")
            node = logic.nextSample()
            if node is not None:
                self.assertTrue(logic.imageIdOf(node))

            self.delayDisplay("Train now")
            progress = logic.trainAndWait(logic.controller.state.model, timeout=300)
            self.assertEqual(progress.status, "DONE", progress.text)
            self.assertEqual(progress.fraction, 1.0)
            self.assertEqual(logic.controller.fetch_train_history()[-1]["status"], "DONE")

            self.delayDisplay("3D plan and export")
            plan = logic.plan(volume, segmentation)
            self.assertTrue(plan.models)
            folder = tempfile.mkdtemp(prefix="medseg-export-")
            paths = logic.controller.export_plan(folder, "stl")
            self.assertTrue(all(os.path.getsize(p) > 0 for p in paths))
            shutil.rmtree(folder, ignore_errors=True)
            self.delayDisplay("MedSeg workflow test passed")
        finally:
            logic.disconnect()
            logic.shutdown()

