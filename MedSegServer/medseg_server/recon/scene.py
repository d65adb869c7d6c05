"""One VTK scene with every structure: offscreen PNG rendering and glTF export.

Offscreen: the VTK wheels from PyPI pick an EGL render window when there is no X display
(Mesa's EGL from Debian's ``libegl1``/``libegl-mesa0``/``libgl1-mesa-dri``, installed by
``scripts/install-system-deps.sh``). The camera looks from the patient's front (anterior),
head up, patient's left on the image's right (the radiological convention).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import vtk

from ..atomic import atomic_write


@dataclass
class SceneItem:
    name: str  # file-safe name, e.g. "portal_vein"
    display: str  # e.g. "Portal vein"
    poly: vtk.vtkPolyData
    color: tuple[float, float, float]
    opacity: float = 1.0


def _window(size: tuple[int, int]) -> vtk.vtkRenderWindow:
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    win = vtk.vtkRenderWindow()
    win.SetOffScreenRendering(1)
    win.SetSize(*size)
    win.SetMultiSamples(0)
    return win


def build_scene(items: list[SceneItem], size: tuple[int, int] = (900, 900)) -> vtk.vtkRenderWindow:
    """A render window (offscreen) holding one actor per item, camera from the front."""
    win = _window(size)
    ren = vtk.vtkRenderer()
    ren.SetBackground(1.0, 1.0, 1.0)
    win.AddRenderer(ren)
    for item in items:
        mapper = vtk.vtkPolyDataMapper()
        mapper.SetInputData(item.poly)
        mapper.ScalarVisibilityOff()
        actor = vtk.vtkActor()
        actor.SetMapper(mapper)
        prop = actor.GetProperty()
        prop.SetColor(*item.color)
        prop.SetOpacity(item.opacity)
        prop.SetSpecular(0.2)
        actor.SetObjectName(item.name) if hasattr(actor, "SetObjectName") else None
        ren.AddActor(actor)
    ren.ResetCamera()
    cam = ren.GetActiveCamera()
    fp = cam.GetFocalPoint()
    dist = cam.GetDistance()
    cam.SetPosition(fp[0], fp[1] - dist, fp[2])  # LPS: anterior is -y
    cam.SetViewUp(0, 0, 1)
    ren.ResetCamera()
    cam.Zoom(1.3)
    ren.ResetCameraClippingRange()
    return win


def write_png(win: vtk.vtkRenderWindow, path: Path) -> Path:
    """Render and save the window as PNG (atomically)."""
    win.Render()
    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(win)
    grab.ReadFrontBufferOff()
    grab.Update()

    def write(tmp: Path) -> None:
        w = vtk.vtkPNGWriter()
        w.SetFileName(str(tmp))
        w.SetInputData(grab.GetOutput())
        w.Write()

    return atomic_write(Path(path), write, suffix=".png")


def write_gltf(win: vtk.vtkRenderWindow, items: list[SceneItem], path: Path) -> Path:
    """Export the scene as one self-contained glTF 2.0 file; nodes, meshes, materials named."""
    win.Render()

    def write(tmp: Path) -> None:
        exp = vtk.vtkGLTFExporter()
        exp.SetRenderWindow(win)
        exp.SetFileName(str(tmp))
        exp.InlineDataOn()
        exp.Write()
        doc = json.loads(tmp.read_text())
        _name_gltf(doc, items)
        tmp.write_text(json.dumps(doc))

    return atomic_write(Path(path), write, suffix=".gltf")


def _name_gltf(doc: dict, items: list[SceneItem]) -> None:
    """vtkGLTFExporter writes anonymous nodes in actor order: give them the structure names."""
    mesh_nodes = [n for n in doc.get("nodes", []) if "mesh" in n]
    for node, item in zip(mesh_nodes, items, strict=False):
        node["name"] = item.display
        mesh = doc["meshes"][node["mesh"]]
        mesh["name"] = item.display
        for prim in mesh.get("primitives", []):
            if "material" in prim:
                mat = doc["materials"][prim["material"]]
                mat["name"] = item.display
                pbr = mat.setdefault("pbrMetallicRoughness", {})
                pbr["baseColorFactor"] = [*item.color, item.opacity]
                if item.opacity < 1.0:
                    mat["alphaMode"] = "BLEND"
    doc.setdefault("asset", {})["generator"] = "MedSeg reconstruction (VTK glTF exporter)"
