"""MedSeg: interactive labelling of liver CT against a MONAI-Label-compatible server.

This file only holds the Slicer glue (module description, GUI wiring, parameter
node and self test). Talking to the server lives in ``MedSegLib`` so that it can
be tested with plain pytest outside Slicer.

Only ``slicer``, ``qt``, ``ctk`` and ``vtk`` (plus the standard library) may be
imported at module level: heavy or optional packages are imported lazily, inside
the methods that need them.
"""

import logging
import os

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
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

#: QSettings key under which the last server URL that worked is remembered.
SERVER_URL_SETTINGS_KEY = "MedSeg/serverUrl"

#: URL proposed when nothing has been remembered yet.
DEFAULT_SERVER_URL = "http://127.0.0.1:8000"

#: Environment variable naming the server the self test connects to.
TEST_SERVER_ENV = "MEDSEG_TEST_SERVER"


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
            "include/exclude points, submit the label so that the model can be retrained, and "
            "build a 3D plan of the segmented structures.<br>"
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
    """

    serverUrl: str
    inputVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    model: str


#
# MedSegWidget
#


class MedSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Module panel: loads Resources/UI/MedSeg.ui and forwards button clicks to MedSegLogic."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)  # observes the parameter node and the scene
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MedSeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)

        # MRML widgets get the scene through the "mrmlSceneChanged" connections of the .ui file.
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = MedSegLogic()

        # Drop the parameter node before the scene is closed, make a new one afterwards.
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        # Buttons
        self.ui.connectButton.connect("clicked(bool)", self.onConnectButton)
        self.ui.serverUrlLineEdit.connect("returnPressed()", self.onConnectButton)
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelChanged)

        # Actions that have no logic behind them yet stay disabled, so that no button
        # silently does nothing. Enable each one when its handler is wired.
        for widget in (
            self.ui.autoSegmentButton,
            self.ui.nextSampleButton,
            self.ui.submitButton,
            self.ui.undoButton,
            self.ui.positivePointsPlaceWidget,
            self.ui.negativePointsPlaceWidget,
            self.ui.trainButton,
            self.ui.reconButton,
            self.ui.exportButton,
        ):
            widget.enabled = False

        # The bottom progress bar and Cancel button are only shown while a request runs.
        self.ui.progressBar.visible = False
        self.ui.cancelButton.visible = False

        self._showDisconnected()
        self.initializeParameterNode()

    def cleanup(self) -> None:
        """Called when the application closes and the module widget is destroyed."""
        self.removeObservers()

    def enter(self) -> None:
        """Called each time the user opens this module."""
        self.initializeParameterNode()

    def exit(self) -> None:
        """Called each time the user opens another module."""
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
        """Make sure a parameter node exists, is observed and has sensible defaults."""
        self.setParameterNode(self.logic.getParameterNode())

        if not self._parameterNode.serverUrl:
            self._parameterNode.serverUrl = savedServerUrl()

        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode:
                self._parameterNode.inputVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode) -> None:
        """Bind the GUI to ``inputParameterNode`` (a MedSegParameterNode or None)."""
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtonStates)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # Widgets with a "SlicerParameterName" dynamic property in the .ui file
            # (serverUrlLineEdit, inputVolumeSelector, segmentationSelector) are synchronised
            # automatically; the model combo box is filled from the server and handled here.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtonStates)
        self._updateButtonStates()

    def _updateButtonStates(self, caller=None, event=None) -> None:
        hasUrl = bool(self._parameterNode and self._parameterNode.serverUrl.strip())
        self.ui.connectButton.enabled = hasUrl
        self.ui.connectButton.toolTip = (
            _("Connect to the server and list its models.") if hasUrl else _("Enter the server URL first.")
        )

    #
    # Server section
    #

    def onConnectButton(self) -> None:
        url = self.ui.serverUrlLineEdit.text
        self.ui.serverStatusLabel.text = _("Connecting...")
        slicer.app.processEvents()

        info = None
        with slicer.util.tryWithErrorDisplay(_("Failed to connect to the MedSeg server."), waitCursor=True):
            try:
                info = self.logic.connect(url)
            except Exception:
                self._showDisconnected()
                raise
        if info is None:
            return

        # Remember the URL that worked, in the normalised form the logic used.
        qt.QSettings().setValue(SERVER_URL_SETTINGS_KEY, self.logic.serverUrl)
        if self._parameterNode:
            self._parameterNode.serverUrl = self.logic.serverUrl

        self._showConnected(info)

    def onModelChanged(self, index: int = -1) -> None:
        if self._parameterNode and self.ui.modelComboBox.currentText:
            self._parameterNode.model = self.ui.modelComboBox.currentText

    def _showConnected(self, info: dict) -> None:
        name = self.logic.serverName(info)
        models = self.logic.modelNames(info)
        if models:
            self.ui.serverStatusLabel.text = _("Connected to {name}. Models: {models}").format(
                name=name, models=", ".join(models)
            )
        else:
            self.ui.serverStatusLabel.text = _("Connected to {name}, but it offers no models.").format(
                name=name
            )

        wanted = self._parameterNode.model if self._parameterNode else ""
        combo = self.ui.modelComboBox
        wasBlocked = combo.blockSignals(True)
        combo.clear()
        for model in models:
            combo.addItem(model)
        if wanted in models:
            combo.currentIndex = models.index(wanted)
        combo.blockSignals(wasBlocked)
        combo.enabled = bool(models)
        self.onModelChanged()

    def _showDisconnected(self) -> None:
        self.ui.serverStatusLabel.text = _("Not connected")
        self.ui.modelComboBox.clear()
        self.ui.modelComboBox.enabled = False


#
# MedSegLogic
#


def savedServerUrl() -> str:
    """The last server URL that connected successfully, or the default one."""
    value = qt.QSettings().value(SERVER_URL_SETTINGS_KEY, DEFAULT_SERVER_URL)
    return str(value or DEFAULT_SERVER_URL)


class MedSegLogic(ScriptedLoadableModuleLogic):
    """Thin adapter between the module and ``MedSegLib.client.MedSegClient``.

    Usable without the GUI, e.g. from the Python console::

        logic = slicer.util.getModuleLogic("MedSeg")
        info = logic.connect("http://127.0.0.1:8000")
        print(logic.modelNames(info))
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.client = None
        self.serverUrl = ""
        self.serverInfo = {}

    def getParameterNode(self):
        return MedSegParameterNode(super().getParameterNode())

    @property
    def isConnected(self) -> bool:
        return self.client is not None

    @staticmethod
    def normalizeServerUrl(url: str) -> str:
        """Strip blanks and trailing slashes; assume http:// when no scheme is given."""
        url = (url or "").strip().rstrip("/")
        if not url:
            raise ValueError(
                _("No server URL given. Enter one such as {url}.").format(url=DEFAULT_SERVER_URL)
            )
        if "://" not in url:
            url = "http://" + url
        return url

    def connect(self, url: str, timeout: float = 30.0, token=None) -> dict:
        """Connect to the server at ``url`` and return its ``/info`` description.

        Any previous connection is dropped first, so a failed attempt leaves the logic
        disconnected. Raises ``ValueError`` for an empty URL and whatever ``MedSegClient``
        raises for network or protocol errors.
        """
        self.disconnect()
        serverUrl = self.normalizeServerUrl(url)

        from MedSegLib.client import MedSegClient

        client = MedSegClient(serverUrl, timeout=timeout, token=token)
        info = client.info()
        self.client = client
        self.serverUrl = serverUrl
        self.serverInfo = dict(info or {})
        logging.info(f"MedSeg: connected to {serverUrl} ({self.serverName(self.serverInfo)})")
        return self.serverInfo

    def disconnect(self) -> None:
        self.client = None
        self.serverUrl = ""
        self.serverInfo = {}

    @staticmethod
    def serverName(info: dict) -> str:
        """Human-readable server name, with its version when the server reports one."""
        name = str(info.get("name") or _("unnamed server"))
        version = info.get("version")
        return f"{name} {version}" if version else name

    @staticmethod
    def modelNames(info: dict) -> list[str]:
        """Model names from an ``/info`` answer, in the server's order.

        MONAI Label reports ``models`` as a mapping from name to description; a list of
        names, or of mappings with a ``name`` key, is accepted too.
        """
        models = info.get("models") or {}
        if isinstance(models, dict):
            return [str(name) for name in models]
        names = []
        for model in models:
            name = model.get("name") if isinstance(model, dict) else model
            if name:
                names.append(str(name))
        return names


#
# MedSegTest
#


def _testServerUrl() -> str:
    return os.environ.get(TEST_SERVER_ENV, "").strip()


_NO_TEST_SERVER_MESSAGE = (
    f"Server test skipped: set the environment variable {TEST_SERVER_ENV} to the URL of a running "
    "MedSeg server (for example http://127.0.0.1:8000) to run it."
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
        if _testServerUrl():
            self.setUp()
            self.test_connect()
        else:
            # skipTest would make "Reload and Test" report a failure; just say why.
            self.delayDisplay(_NO_TEST_SERVER_MESSAGE)

    def test_parameter_node(self) -> None:
        self.delayDisplay("Parameter node round trip")
        parameterNode = MedSegLogic().getParameterNode()
        volume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        parameterNode.serverUrl = DEFAULT_SERVER_URL
        parameterNode.inputVolume = volume
        parameterNode.segmentation = segmentation
        parameterNode.model = "liver"
        self.assertEqual(parameterNode.serverUrl, DEFAULT_SERVER_URL)
        self.assertEqual(parameterNode.inputVolume.GetID(), volume.GetID())
        self.assertEqual(parameterNode.segmentation.GetID(), segmentation.GetID())
        self.assertEqual(parameterNode.model, "liver")

    def test_empty_url_rejected(self) -> None:
        self.delayDisplay("Empty server URL is rejected")
        logic = MedSegLogic()
        with self.assertRaises(ValueError):
            logic.connect("   ")
        self.assertFalse(logic.isConnected)
        self.assertEqual(MedSegLogic.normalizeServerUrl(" localhost:8000/ "), "http://localhost:8000")

    def test_connect(self) -> None:
        url = _testServerUrl()
        if not url:
            self.skipTest(_NO_TEST_SERVER_MESSAGE)
        self.delayDisplay(f"Connecting to {url}")
        logic = MedSegLogic()
        info = logic.connect(url)
        self.assertTrue(logic.isConnected)
        models = logic.modelNames(info)
        self.assertTrue(models, f"Server at {url} lists no models: {info!r}")
        self.delayDisplay(f"Connected to {logic.serverName(info)}; models: {', '.join(models)}")
