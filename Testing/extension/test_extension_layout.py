"""Static checks of the Slicer extension layout; they run without Slicer.

They catch the mistakes that otherwise only show up in an extension build or
when the module is opened in Slicer: a Python file or resource missing from the
module's CMakeLists.txt (so it is not installed), a widget referenced in MedSeg.py
but absent from MedSeg.ui, missing extension metadata, a syntax error.
"""

import ast
import py_compile
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO / "MedSegExtension" / "MedSeg"
MODULE_PY = MODULE_DIR / "MedSeg.py"
MODULE_CMAKE = MODULE_DIR / "CMakeLists.txt"
MODULE_UI = MODULE_DIR / "Resources" / "UI" / "MedSeg.ui"
TOP_CMAKE = REPO / "CMakeLists.txt"
EXTENSION_CMAKE = REPO / "MedSegExtension" / "CMakeLists.txt"

# Files under the module's Resources/ that are not installed with it.
UNLISTED_RESOURCE_NAMES = {"make_icon.py", ".DS_Store"}

REQUIRED_EXTENSION_VARIABLES = (
    "EXTENSION_HOMEPAGE",
    "EXTENSION_CATEGORY",
    "EXTENSION_CONTRIBUTORS",
    "EXTENSION_DESCRIPTION",
    "EXTENSION_ICONURL",
    "EXTENSION_SCREENSHOTURLS",
    "EXTENSION_DEPENDS",
)

# Top-level imports MedSeg.py may use besides the standard library: it is loaded
# by Slicer at startup, so anything heavier must be imported lazily.
ALLOWED_THIRD_PARTY_IMPORTS = {"slicer", "qt", "ctk", "vtk"}


# ---------------------------------------------------------------------------
# A small CMake reader: enough for set(...) lists and macro keyword arguments.
# ---------------------------------------------------------------------------


def _strip_cmake_comments(text: str) -> str:
    out = []
    for line in text.splitlines():
        in_string = False
        for i, char in enumerate(line):
            if char == '"':
                in_string = not in_string
            elif char == "#" and not in_string:
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


def _cmake_commands(text: str) -> list[tuple[str, list[str]]]:
    """(command name lower-cased, arguments) for every command call in ``text``."""
    text = _strip_cmake_comments(text)
    command_start = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
    commands = []
    pos = 0
    while match := command_start.search(text, pos):
        depth, pos, in_string = 1, match.end(), False
        while depth and pos < len(text):
            char = text[pos]
            if char == '"':
                in_string = not in_string
            elif char == "(" and not in_string:
                depth += 1
            elif char == ")" and not in_string:
                depth -= 1
            pos += 1
        body = text[match.end() : pos - 1]
        args = [a[1:-1] if a.startswith('"') else a for a in re.findall(r'"[^"]*"|[^\s"]+', body)]
        commands.append((match.group(1).lower(), args))
    return commands


def _cmake_variables(commands) -> dict[str, list[str]]:
    variables: dict[str, list[str]] = {}
    for name, args in commands:
        if name == "set" and args:
            variables[args[0]] = _expand(args[1:], variables)
    return variables


def _expand(args: list[str], variables: dict[str, list[str]]) -> list[str]:
    expanded = []
    for arg in args:
        whole = re.fullmatch(r"\$\{(\w+)\}", arg)
        if whole:
            expanded.extend(variables.get(whole.group(1), []))
        else:
            expanded.append(re.sub(r"\$\{(\w+)\}", lambda m: ";".join(variables.get(m.group(1), [])), arg))
    return expanded


def _macro_keyword_args(cmake_file: Path, macro: str) -> dict[str, list[str]]:
    commands = _cmake_commands(cmake_file.read_text(encoding="utf-8"))
    variables = _cmake_variables(commands)
    calls = [args for name, args in commands if name == macro.lower()]
    assert len(calls) == 1, f"{cmake_file.relative_to(REPO)}: expected exactly one {macro}() call"
    keywords = {"NAME", "SCRIPTS", "RESOURCES", "TARGET_LIBRARIES", "WITH_GENERIC_TESTS", "WITH_SUBDIR"}
    result: dict[str, list[str]] = {}
    current = None
    for arg in calls[0]:
        if arg in keywords:
            current = arg
            result.setdefault(current, [])
        elif current is not None:
            result[current].extend(_expand([arg], variables))
    return result


@pytest.fixture(scope="module")
def module_macro_args() -> dict[str, list[str]]:
    return _macro_keyword_args(MODULE_CMAKE, "slicerMacroBuildScriptedModule")


# ---------------------------------------------------------------------------
# Module CMakeLists.txt: listed <=> present
# ---------------------------------------------------------------------------


def _module_python_files() -> set[str]:
    files = set()
    for path in MODULE_DIR.rglob("*.py"):
        relative = path.relative_to(MODULE_DIR)
        # Build-time tests (Testing/) are registered by their own CMakeLists.txt.
        if "__pycache__" in relative.parts or relative.parts[0] in {"Testing", "Resources"}:
            continue
        files.add(relative.as_posix())
    return files


def _module_resource_files() -> set[str]:
    resources = MODULE_DIR / "Resources"
    return {
        path.relative_to(MODULE_DIR).as_posix()
        for path in resources.rglob("*")
        if path.is_file() and path.name not in UNLISTED_RESOURCE_NAMES and "__pycache__" not in path.parts
    }


def test_module_macro_call(module_macro_args):
    assert module_macro_args.get("NAME") == ["MedSeg"]
    assert "WITH_GENERIC_TESTS" in module_macro_args


def test_every_python_file_is_listed_in_scripts(module_macro_args):
    listed = set(module_macro_args.get("SCRIPTS", []))
    present = _module_python_files()
    assert not present - listed, f"present on disk but missing from SCRIPTS: {sorted(present - listed)}"
    assert not listed - present, f"listed in SCRIPTS but missing on disk: {sorted(listed - present)}"


def test_every_resource_is_listed_in_resources(module_macro_args):
    listed = set(module_macro_args.get("RESOURCES", []))
    present = _module_resource_files()
    assert not present - listed, f"present on disk but missing from RESOURCES: {sorted(present - listed)}"
    assert not listed - present, f"listed in RESOURCES but missing on disk: {sorted(listed - present)}"


def test_module_self_test_is_registered():
    commands = _cmake_commands(MODULE_CMAKE.read_text(encoding="utf-8"))
    variables = _cmake_variables(commands)
    registered = [_expand(args, variables) for name, args in commands if name == "slicer_add_python_unittest"]
    assert ["SCRIPT", "MedSeg.py"] in registered
    assert re.search(r"if\s*\(\s*BUILD_TESTING\s*\)", MODULE_CMAKE.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------
# Extension-level CMakeLists.txt
# ---------------------------------------------------------------------------


def test_top_level_cmake_has_extension_metadata():
    commands = _cmake_commands(TOP_CMAKE.read_text(encoding="utf-8"))
    names = [name for name, _ in commands]
    variables = _cmake_variables(commands)

    assert names[0] == "cmake_minimum_required"
    assert ("project", ["MedSeg"]) in commands
    for variable in REQUIRED_EXTENSION_VARIABLES:
        assert variables.get(variable), f"{variable} is not set (or empty)"
    assert variables["EXTENSION_CATEGORY"] == ["Segmentation"]
    assert variables["EXTENSION_DEPENDS"] == ["NA"]
    assert variables["EXTENSION_HOMEPAGE"] == ["https://github.com/medseg/MedSeg"]
    icon_url = variables["EXTENSION_ICONURL"][0]
    assert icon_url.startswith("https://raw.githubusercontent.com/medseg/MedSeg/")
    assert icon_url.endswith("/Resources/Icons/MedSeg.png")
    assert (REPO / "Resources" / "Icons" / "MedSeg.png").is_file()


def test_top_level_cmake_includes_slicer_and_subdirectory():
    commands = _cmake_commands(TOP_CMAKE.read_text(encoding="utf-8"))
    assert ("find_package", ["Slicer", "REQUIRED"]) in commands
    includes = [args[0] for name, args in commands if name == "include" and args]
    assert "${Slicer_USE_FILE}" in includes
    assert "${Slicer_EXTENSION_GENERATE_CONFIG}" in includes
    assert "${Slicer_EXTENSION_CPACK}" in includes
    assert includes.index("${Slicer_USE_FILE}") < includes.index("${Slicer_EXTENSION_CPACK}")
    assert ("add_subdirectory", ["MedSegExtension"]) in commands

    extension_commands = _cmake_commands(EXTENSION_CMAKE.read_text(encoding="utf-8"))
    assert ("add_subdirectory", ["MedSeg"]) in extension_commands


# ---------------------------------------------------------------------------
# MedSeg.ui and MedSeg.py
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ui_root() -> ET.Element:
    return ET.parse(MODULE_UI).getroot()


def _ui_widgets(root: ET.Element) -> dict[str, str]:
    return {w.get("name"): w.get("class") for w in root.iter("widget")}


def test_ui_is_a_qmrmlwidget(ui_root):
    assert ui_root.tag == "ui"
    top = ui_root.find("widget")
    assert top is not None and top.get("class") == "qMRMLWidget"
    assert ui_root.findtext("class") == top.get("name")


def test_ui_has_the_collapsible_sections(ui_root):
    titles = {
        w.findtext("property[@name='text']/string")
        for w in ui_root.iter("widget")
        if w.get("class") == "ctkCollapsibleButton"
    }
    assert {"Server", "Segment", "Interact", "Train", "3D plan"} <= titles


def test_ui_mrml_widgets_receive_the_scene(ui_root):
    top_name = ui_root.find("widget").get("name")
    connected = {
        c.findtext("receiver")
        for c in ui_root.iter("connection")
        if c.findtext("sender") == top_name
        and c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
        and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"
    }
    mrml_widgets = {
        name
        for name, cls in _ui_widgets(ui_root).items()
        if cls in {"qMRMLNodeComboBox", "qSlicerMarkupsPlaceWidget"}
    }
    assert mrml_widgets, "no MRML widgets found in MedSeg.ui"
    assert not mrml_widgets - connected, (
        f"not connected to mrmlSceneChanged: {sorted(mrml_widgets - connected)}"
    )


def test_every_ui_widget_used_by_medseg_py_exists(ui_root):
    source = MODULE_PY.read_text(encoding="utf-8")
    referenced = set(re.findall(r"\bself\.ui\.([A-Za-z_]\w*)", source))
    assert referenced, "MedSeg.py references no self.ui widgets"
    missing = referenced - set(_ui_widgets(ui_root))
    assert not missing, f"MedSeg.py uses widgets missing from MedSeg.ui: {sorted(missing)}"


def _parameter_node_fields() -> dict[str, str]:
    tree = ast.parse(MODULE_PY.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "MedSegParameterNode":
            decorators = {d.id for d in node.decorator_list if isinstance(d, ast.Name)}
            assert "parameterNodeWrapper" in decorators
            return {
                item.target.id: ast.unparse(item.annotation)
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
            }
    pytest.fail("MedSegParameterNode not found in MedSeg.py")


def test_parameter_node_fields():
    assert _parameter_node_fields() == {
        "serverUrl": "str",
        "inputVolume": "vtkMRMLScalarVolumeNode",
        "segmentation": "vtkMRMLSegmentationNode",
        "model": "str",
        "positivePoints": "vtkMRMLMarkupsFiducialNode",
        "negativePoints": "vtkMRMLMarkupsFiducialNode",
        "box": "vtkMRMLMarkupsROINode",
        "segment": "str",
    }


def test_ui_parameter_bindings_match_parameter_node(ui_root):
    bound = {p.findtext("string") for p in ui_root.iter("property") if p.get("name") == "SlicerParameterName"}
    assert bound, "no widget of MedSeg.ui carries a SlicerParameterName"
    assert not bound - set(_parameter_node_fields()), "SlicerParameterName not in MedSegParameterNode"


def test_medseg_py_compiles(tmp_path):
    py_compile.compile(str(MODULE_PY), cfile=str(tmp_path / "MedSeg.pyc"), doraise=True)


def test_medseg_py_defines_the_module_classes():
    tree = ast.parse(MODULE_PY.read_text(encoding="utf-8"))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    expected_bases = {
        "MedSeg": "ScriptedLoadableModule",
        "MedSegWidget": "ScriptedLoadableModuleWidget",
        "MedSegLogic": "ScriptedLoadableModuleLogic",
        "MedSegTest": "ScriptedLoadableModuleTest",
    }
    for name, base in expected_bases.items():
        assert name in classes, f"class {name} missing from MedSeg.py"
        assert base in {ast.unparse(b) for b in classes[name].bases}, f"{name} must derive from {base}"


def test_medseg_py_top_level_imports_are_light():
    tree = ast.parse(MODULE_PY.read_text(encoding="utf-8"))
    allowed = ALLOWED_THIRD_PARTY_IMPORTS | set(sys.stdlib_module_names)
    heavy = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            roots = [(node.module or "").split(".")[0]]
        else:
            continue
        heavy.extend(root for root in roots if root not in allowed)
    assert not heavy, f"import these lazily inside methods instead: {heavy}"


# ---------------------------------------------------------------------------
# Icons and requirements
# ---------------------------------------------------------------------------


def test_icons_are_128px_and_identical():
    module_icon = MODULE_DIR / "Resources" / "Icons" / "MedSeg.png"
    extension_icon = REPO / "Resources" / "Icons" / "MedSeg.png"
    for icon in (module_icon, extension_icon):
        data = icon.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{icon} is not a PNG"
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert (width, height) == (128, 128), f"{icon} is {width}x{height}"
    assert module_icon.read_bytes() == extension_icon.read_bytes(), "run Resources/Icons/make_icon.py"


def test_requirements_have_lower_bounds_only():
    lines = (MODULE_DIR / "Resources" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    requirements = [line.split("#")[0].strip() for line in lines]
    requirements = [r for r in requirements if r]
    assert requirements
    for requirement in requirements:
        assert ">=" in requirement and "==" not in requirement, f"use a lower bound: {requirement}"
