"""Stand-ins for the parts of the Slicer *application* that slicer-core lacks (Qt GUI, i18n,
parameter-node wrapper, scripted-module base classes), so MedSeg.py's Logic and self test run
in CI on slicer-core's real MRML. Only the Qt GUI layer is replaced; MRML, segmentations,
markups, VTK and the server are real.

Usage (in a fresh interpreter): ``import slicer_app_standins; slicer_app_standins.install(tmpdir)``.
"""

from __future__ import annotations

import sys
import types
import unittest


class _QSettings:
    store: dict = {}

    def value(self, key, default=None):
        return self.store.get(key, default)

    def setValue(self, key, value):
        self.store[key] = value


class _QTimer:
    def __init__(self, *args):
        self.interval = 0

    def setInterval(self, ms):
        self.interval = ms

    def connect(self, *args):
        pass

    def start(self, *args):
        pass

    def stop(self):
        pass


def _parameter_node_wrapper(cls):
    """Attribute storage with the annotated defaults ("" for str, None for nodes)."""
    fields = dict(getattr(cls, "__annotations__", {}))

    class Wrapped:
        __name__ = cls.__name__

        def __init__(self, node):
            object.__setattr__(self, "_node", node)
            object.__setattr__(self, "_values", {k: ("" if v in (str, "str") else None) for k, v in fields.items()})

        def __getattr__(self, name):
            values = object.__getattribute__(self, "_values")
            if name in values:
                return values[name]
            raise AttributeError(name)

        def __setattr__(self, name, value):
            if name not in fields:
                raise AttributeError(f"{cls.__name__} has no parameter {name!r}")
            self._values[name] = value

    return Wrapped


def install(tmpdir: str) -> None:
    import slicer
    import slicer.util

    qt = types.ModuleType("qt")
    qt.QSettings = _QSettings
    qt.QTimer = _QTimer
    sys.modules["qt"] = qt

    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text
    i18n.translate = lambda context, text: text
    sys.modules["slicer.i18n"] = i18n

    wrapper = types.ModuleType("slicer.parameterNodeWrapper")
    wrapper.parameterNodeWrapper = _parameter_node_wrapper
    sys.modules["slicer.parameterNodeWrapper"] = wrapper

    scripted = types.ModuleType("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModule:
        def __init__(self, parent):
            self.parent = parent

    class ScriptedLoadableModuleWidget:
        def __init__(self, parent=None):
            self.parent = parent

    class ScriptedLoadableModuleLogic:
        def __init__(self, parent=None):
            pass

        def getParameterNode(self):
            return slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")

    class ScriptedLoadableModuleTest(unittest.TestCase):
        def __init__(self, *args, **kwargs):
            super().__init__("runTest")

        def delayDisplay(self, message, msec=0):
            print("delayDisplay:", message, flush=True)

        def runTest(self):  # overridden
            pass

    scripted.ScriptedLoadableModule = ScriptedLoadableModule
    scripted.ScriptedLoadableModuleWidget = ScriptedLoadableModuleWidget
    scripted.ScriptedLoadableModuleLogic = ScriptedLoadableModuleLogic
    scripted.ScriptedLoadableModuleTest = ScriptedLoadableModuleTest
    sys.modules["slicer.ScriptedLoadableModule"] = scripted

    slicer.mrmlScene = slicer.vtkMRMLScene()
    slicer.app = types.SimpleNamespace(temporaryPath=tmpdir)
