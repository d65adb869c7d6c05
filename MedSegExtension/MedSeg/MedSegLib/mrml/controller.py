"""The module's actions on a scene: connect, Auto, clicks, undo, Submit, Next sample, train, 3D plan.

Each action is split in two so the GUI never freezes:

- ``fetch_*`` methods talk to the server and read/write files; they touch no MRML node and run on
  the :class:`~MedSegLib.jobs.JobRunner` worker;
- ``apply_*`` methods put the answer into MRML nodes; they run on the main thread.

Inputs that come from MRML are captured on the main thread first (``capture_volume``), as plain
SimpleITK images. The plain synchronous methods (``auto``, ``interact``, ...) chain both halves for
scripts and tests.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..client import MedSegClient
from ..errors import ClientError, MedSegError, NotFound
from ..geometry import Grid, check_same_grid, image_from_array
from ..interactions import (
    Interaction,
    annotated_slices,
    interaction_params,
    mask_fingerprint,
    scribble_payload,
)
from ..recon import ReconBundle, read_bundle
from ..workflow import (
    CohortProgress,
    EngineSession,
    Sample,
    ServerDescription,
    TrainProgress,
    WorkflowState,
    cohort_progress,
    train_history,
    train_progress,
)
from . import markups, models, segments, tables, volumes

IMAGE_ID_ATTRIBUTE = "MedSeg.ImageId"
UNCERTAINTY_METHODS = ("mc_dropout", "tta")
_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_image_id(name: str) -> str:
    """A datastore ID from a node name (letters, digits, ``_.-``)."""
    return (_ID_CHARS.sub("_", name).strip("._-") or "volume")[:100]


@dataclass
class CapturedVolume:
    """A volume node's voxels and grid, copied on the main thread for the worker."""

    node_id: str
    name: str
    image: sitk.Image
    grid: Grid
    image_id: str = ""  # known datastore ID (from Next sample or an earlier upload)


@dataclass
class LabelAnswer:
    """A label image from the server with its params."""

    image_id: str
    label: sitk.Image
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def from_model(self) -> str:
        """The learned model the interactive engine started this segment from ("" when none)."""
        update = self.params.get("update")
        return str(update.get("from_model") or "") if isinstance(update, dict) else ""


@dataclass
class EngineInput:
    """An engine request captured on the main thread: scribbles or sparse slices for one segment."""

    kind: str  # "Scribbles" or "Slices" (also the undo label)
    segment: str
    current: np.ndarray  # the segment now, [k, j, i] on the volume grid
    body: dict[str, Any]  # the engine's ``scribbles`` or ``slices`` parameter
    upload: bool = False  # send ``current`` as the label file (the annotated slices)


@dataclass
class PlanResult:
    """What "3D plan" put in the scene."""

    models: list
    table: Any
    territories: Any = None
    source: str = "server"  # "server" (/recon) or "local" (closed surfaces of the segmentation)


class MedSegController:
    """State plus actions; one per module logic. ``scene`` is the MRML scene to work in."""

    def __init__(self, scene, workdir: str | Path | None = None) -> None:
        self.scene = scene
        self.state = WorkflowState()
        self.client: MedSegClient | None = None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="medseg-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.plan: PlanResult | None = None

    # ------------------------------------------------------------- connect
    def connect(self, url: str, token: str | None = None, user: str | None = None, timeout: float = 30.0) -> ServerDescription:
        """Connect (worker-safe): ``/info/`` checked; the old connection is dropped first."""
        self.disconnect()
        client = MedSegClient(url, timeout=timeout, token=token or None, user=user or None)
        try:
            server = ServerDescription.from_info(client.info())
        except Exception:
            client.close()
            raise
        self.client = client
        self.state.connect(server)
        return server

    def disconnect(self) -> None:
        self.close_engine()
        if self.client is not None:
            self.client.close()
        self.client = None
        self.state.disconnect()

    def _client(self) -> MedSegClient:
        if self.client is None:
            raise RuntimeError("not connected: connect to a server first")
        return self.client

    def _tmp(self, suffix: str) -> Path:
        return self.workdir / f"{uuid.uuid4().hex[:12]}{suffix}"

    # ------------------------------------------------------------- volumes
    def capture_volume(self, volume_node) -> CapturedVolume:
        """Main thread: copy the volume for the worker (and the datastore ID it is known under)."""
        if volume_node is None:
            raise ValueError("select an input volume first")
        return CapturedVolume(
            node_id=volume_node.GetID(),
            name=volume_node.GetName(),
            image=volumes.volume_to_image(volume_node),
            grid=volumes.volume_grid(volume_node),
            image_id=volume_node.GetAttribute(IMAGE_ID_ATTRIBUTE) or "",
        )

    def ensure_on_server(self, volume: CapturedVolume) -> str:
        """Worker: the datastore ID of the volume, uploading it when the server lacks it.

        The ID is the volume name; if another image already has that name, the ID gets a content hash.
        """
        client = self._client()
        if volume.image_id and client.image_exists(volume.image_id):
            return volume.image_id
        path = self._tmp(".nii.gz")
        volumes.write_image(volume.image, path)
        base = safe_image_id(volume.name)
        try:
            image_id = client.upload_image(path, image_id=base, params={"source": "slicer"})
        except ClientError as exc:
            if exc.status != 409:
                raise
            digest = hashlib.sha256(sitk.GetArrayViewFromImage(volume.image).tobytes()).hexdigest()[:10]
            image_id = client.upload_image(path, image_id=f"{base}-{digest}", params={"source": "slicer"})
        finally:
            path.unlink(missing_ok=True)
        volume.image_id = image_id
        return image_id

    def remember_image_id(self, volume_node, image_id: str) -> None:
        """Main thread: note the datastore ID on the node (saved with the scene)."""
        volume_node.SetAttribute(IMAGE_ID_ATTRIBUTE, image_id)

    def _read_label(self, result, grid: Grid) -> sitk.Image:
        path = self._tmp(_label_suffix(result.filename))
        try:
            path.write_bytes(result.label)
            label = sitk.ReadImage(str(path))
        finally:
            path.unlink(missing_ok=True)
        check_same_grid(label, grid, "the server's label")
        return label

    # ---------------------------------------------------------------- Auto
    def fetch_auto(self, volume: CapturedVolume, model: str | None = None) -> LabelAnswer:
        """Worker: run the automatic model on the volume (uploaded if needed)."""
        server = self.state.server
        model = model or self.state.model
        if not server or not model:
            raise RuntimeError("connect and choose a model first")
        image_id = self.ensure_on_server(volume)
        params = {**server.model_config(model), "result_extension": ".nii.gz", "result_dtype": "uint8"}
        result = self._client().infer(model, image_id=image_id, params=params)
        label_names = result.params.get("label_names") or server.model_labels(model)
        return LabelAnswer(image_id, self._read_label(result, volume.grid), {**result.params, "label_names": label_names})

    def apply_auto(self, answer: LabelAnswer, volume_node, segmentation_node) -> list[str]:
        """Main thread: segments from the label (undoable)."""
        self.remember_image_id(volume_node, answer.image_id)
        self.state.undo.push("Auto", segments.snapshot(segmentation_node))
        ids = segments.load_label(segmentation_node, answer.label, volume_node, answer.params.get("label_names"))
        if ids and self.state.segment not in ids:
            self.state.segment = ids[0]
        return ids

    def auto(self, volume_node, segmentation_node, model: str | None = None) -> list[str]:
        return self.apply_auto(self.fetch_auto(self.capture_volume(volume_node), model), volume_node, segmentation_node)

    # ----------------------------------------------------- clicks and boxes
    def capture_interaction(self, volume_node, positive_node, negative_node, roi_node=None, segment: str = "") -> Interaction:
        """Main thread: the placed points/box in the volume's RAS."""
        return markups.interaction_from_markups(segment or self.state.segment, positive_node, negative_node, volume_node, roi_node)

    def fetch_interaction(self, volume: CapturedVolume, interaction: Interaction, model: str | None = None) -> LabelAnswer:
        """Worker: send clicks (voxel indices) for the selected segment; keeps the server session."""
        server = self.state.server
        model = model or self.state.interactive_model or self.state.model
        if not server or not model:
            raise RuntimeError("connect first: the server offers no model for clicks")
        image_id = self.ensure_on_server(volume)
        base = {**server.model_config(model), "result_extension": ".nii.gz", "result_dtype": "uint8"}
        params = interaction_params(interaction, volume.grid, self.state.session_id or None, base)
        try:
            result = self._client().infer(model, image_id=image_id, params=params)
        except ClientError as exc:
            if not (self.state.session_id and exc.status in (404, 410)):
                raise
            self.state.session_id = ""  # the session expired: start a new one
            params.pop("session_id", None)
            result = self._client().infer(model, image_id=image_id, params=params)
        if result.params.get("session_id"):
            self.state.session_id = str(result.params["session_id"])
        label_names = result.params.get("label_names") or server.model_labels(model)
        return LabelAnswer(image_id, self._read_label(result, volume.grid), {**result.params, "label_names": label_names})

    def apply_interaction(self, answer: LabelAnswer, volume_node, segmentation_node, segment: str = "",
                          what: str = "Clicks") -> int:
        """Main thread: update the selected segment in place (undoable); returns its voxel count."""
        segment = segment or self.state.segment
        self.remember_image_id(volume_node, answer.image_id)
        names = answer.params.get("label_names") or {}
        value = names.get(segment) if isinstance(names, dict) else None
        if value is None and isinstance(names, dict) and len(names) == 1:
            value = next(iter(names.values()))
        self.state.undo.push(what, segments.snapshot(segmentation_node))
        segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
        return segments.update_segment_from_label(segmentation_node, segment, answer.label, volume_node, value)

    def interact(self, volume_node, segmentation_node, positive_node, negative_node, roi_node=None, segment: str = "") -> int:
        if segment:
            self.state.segment = segment
        interaction = self.capture_interaction(volume_node, positive_node, negative_node, roi_node, segment)
        answer = self.fetch_interaction(self.capture_volume(volume_node), interaction)
        return self.apply_interaction(answer, volume_node, segmentation_node, segment)

    # ---------------------------------------- engine: scribbles and sparse slices
    def engine_model(self) -> str:
        """The server's interactive engine (scribbles, sparse slices); "" when it has none."""
        return self.state.server.engine_model() if self.state.server else ""

    def capture_scribbles(self, segmentation_node, volume_node, segment: str = "") -> EngineInput:
        """Main thread: the painted scribble segments (as voxel lists) and the segment as it is now."""
        segment = _segment_or_fail(segment or self.state.segment)
        fg = segments.segment_mask_or_empty(segmentation_node, "foreground_scribbles", volume_node)
        bg = segments.segment_mask_or_empty(segmentation_node, "background_scribbles", volume_node)
        current = segments.segment_mask_or_empty(segmentation_node, segment, volume_node)
        return EngineInput("Scribbles", segment, current, {"scribbles": scribble_payload(fg, bg)})

    def capture_slices(self, segmentation_node, volume_node, segment: str = "") -> EngineInput:
        """Main thread: the segment painted on a few slices, and which slices (the rest is to fill in)."""
        segment = _segment_or_fail(segment or self.state.segment)
        current = segments.segment_mask_or_empty(segmentation_node, segment, volume_node)
        return EngineInput("Slices", segment, current, {"slices": annotated_slices(current)}, upload=True)

    def fetch_engine(self, volume: CapturedVolume, request: EngineInput) -> LabelAnswer:
        """Worker: send scribbles or sparse slices for one segment through an engine session.

        The session is opened on first use (and again when its lease ran out). When the server does
        not hold the segment as it is in Slicer now (edited locally, undone, or from Auto), the
        target is reset there and the current mask goes with the request as the mask to refine.
        """
        model = self.engine_model()
        if not model:
            raise RuntimeError("the server has no interactive engine (needed for scribbles and sparse slices)")
        image_id = self.ensure_on_server(volume)
        for attempt in (0, 1):
            engine = self._engine_session(image_id)
            try:
                return self._engine_request(volume, engine, request, model)
            except ClientError as exc:
                if attempt or exc.status not in (404, 410) or "session" not in exc.detail.lower():
                    raise
                self.state.engine = None  # lease expired or evicted: open a new session once
        raise AssertionError("unreachable")

    def _engine_session(self, image_id: str) -> EngineSession:
        engine = self.state.engine
        if engine is None or engine.image_id != image_id:
            if engine is not None:
                self.close_engine()
            answer = self._client().open_interactive_session(image_id)
            engine = EngineSession(str(answer["session_id"]), image_id)
            self.state.engine = engine
        return engine

    def close_engine(self) -> None:
        """Close the engine session on the server (best effort) and forget it."""
        engine, self.state.engine = self.state.engine, None
        if engine is not None and self.client is not None:
            try:
                self._client().close_interactive_session(engine.session_id)
            except MedSegError:
                pass

    def _engine_request(self, volume: CapturedVolume, engine: EngineSession, request: EngineInput, model: str) -> LabelAnswer:
        client = self._client()
        params: dict[str, Any] = {
            **request.body, "label": request.segment, "session_id": engine.session_id,
            "result_extension": ".nii.gz", "result_dtype": "uint8",
        }
        stale = engine.synced.get(request.segment) != mask_fingerprint(request.current)
        upload = request.upload
        if stale or request.upload:
            client.reset_interactive_target(engine.session_id, request.segment)
            engine.synced.pop(request.segment, None)
            if not request.upload and request.current.any():
                params["mask"] = "label"  # the segment as it is now, refined with the scribbles
                upload = True
        path = None
        if upload:
            path = self._tmp(".nii.gz")
            volumes.write_image(image_from_array(request.current.astype(np.uint8), volume.grid.ijk_to_ras), path)
        try:
            result = client.infer(model, image_id=engine.image_id, params=params, label=path)
        finally:
            if path is not None:
                path.unlink(missing_ok=True)
        server = self.state.server
        label_names = result.params.get("label_names") or (server.model_labels(model) if server else {})
        label = self._read_label(result, volume.grid)
        value = label_names.get(request.segment) if isinstance(label_names, dict) else None
        mask = sitk.GetArrayViewFromImage(label) == value if value is not None else sitk.GetArrayViewFromImage(label) > 0
        extra = {"label_names": label_names, "engine_session": engine.session_id, "engine_fingerprint": mask_fingerprint(mask)}
        return LabelAnswer(engine.image_id, label, {**result.params, **extra})

    def apply_engine(self, answer: LabelAnswer, volume_node, segmentation_node, request: EngineInput) -> int:
        """Main thread: update the segment in place (undoable), empty the scribble segments; voxel count."""
        count = self.apply_interaction(answer, volume_node, segmentation_node, request.segment, request.kind)
        engine = self.state.engine
        if engine is not None and engine.session_id == answer.params.get("engine_session"):
            engine.synced[request.segment] = str(answer.params["engine_fingerprint"])
        if request.kind == "Scribbles":
            segments.clear_segments(segmentation_node, segments.SCRIBBLE_SEGMENTS, volume_node)
        return count

    def scribbles(self, volume_node, segmentation_node, segment: str = "") -> int:
        """Send the painted scribbles for ``segment`` and update it (synchronous: scripts and tests)."""
        request = self.capture_scribbles(segmentation_node, volume_node, segment)
        answer = self.fetch_engine(self.capture_volume(volume_node), request)
        return self.apply_engine(answer, volume_node, segmentation_node, request)

    def fill_slices(self, volume_node, segmentation_node, segment: str = "") -> int:
        """Fill ``segment`` in 3D from the few slices it is painted on (synchronous)."""
        request = self.capture_slices(segmentation_node, volume_node, segment)
        answer = self.fetch_engine(self.capture_volume(volume_node), request)
        return self.apply_engine(answer, volume_node, segmentation_node, request)

    # ---------------------------------------------------------------- undo
    def undo(self, segmentation_node) -> str:
        """Restore the segmentation as it was before the last Auto/clicks; returns what was undone."""
        what, copy = self.state.undo.pop()
        segments.restore(segmentation_node, copy)
        return what

    # -------------------------------------------------------------- submit
    def capture_label(self, segmentation_node, volume_node) -> sitk.Image:
        """Main thread: the segmentation as a label image with MedSeg's values."""
        return segments.label_image(segmentation_node, volume_node)

    def fetch_submit(self, volume: CapturedVolume, label: sitk.Image, tag: str = "final") -> dict[str, Any]:
        """Worker: save the label (uploading the volume if the server lacks it); returns the saved version."""
        image_id = self.ensure_on_server(volume)
        path = self._tmp(".nii.gz")
        volumes.write_image(label, path)
        values = np.unique(sitk.GetArrayViewFromImage(label))
        try:
            saved = self._client().save_label(
                image_id, path, tag=tag, params={"label_values": [int(v) for v in values if v]}
            )
        finally:
            path.unlink(missing_ok=True)
        self.state.last_submitted = {"image": image_id, **(saved or {})}
        return self.state.last_submitted

    def submit(self, volume_node, segmentation_node, tag: str = "final") -> dict[str, Any]:
        saved = self.fetch_submit(self.capture_volume(volume_node), self.capture_label(segmentation_node, volume_node), tag)
        self.remember_image_id(volume_node, saved["image"])
        return saved

    # --------------------------------------------------------- next sample
    def fetch_next_sample(self, strategy: str | None = None) -> tuple[Sample, Path] | None:
        """Worker: ask the strategy for the next case and download it; ``None`` when all are labelled."""
        server = self.state.server
        strategy = strategy or (server.default_strategy() if server else None)
        if not strategy:
            raise RuntimeError("the server offers no active-learning strategy")
        answer = self._client().next_sample(strategy)
        if answer is None:
            return None
        sample = Sample.from_next_sample(answer, strategy)
        folder = self.workdir / "samples" / safe_image_id(sample.image_id)
        path = self._client().download_image(sample.image_id, folder)
        return sample, path

    def apply_next_sample(self, fetched: tuple[Sample, Path]):
        """Main thread: load the downloaded case as a volume node; returns the node."""
        sample, path = fetched
        node = volumes.load_volume(self.scene, path, name=sample.image_id)
        self.remember_image_id(node, sample.image_id)
        self.state.set_sample(sample)
        return node

    def next_sample(self, strategy: str | None = None):
        fetched = self.fetch_next_sample(strategy)
        return None if fetched is None else self.apply_next_sample(fetched)

    # ------------------------------------------------------ cohort, training
    def fetch_cohort(self) -> CohortProgress:
        return cohort_progress(self._client().datastore("all"))

    def fetch_train_start(self, model: str | None = None) -> dict[str, Any]:
        model = model or self.state.model
        if not model:
            raise RuntimeError("choose a model to train")
        return self._client().train_start(model)

    def fetch_train_progress(self) -> TrainProgress:
        return train_progress(self._client().train_status())

    def fetch_train_history(self) -> list[dict[str, Any]]:
        return train_history(self._client().train_status(all_tasks=True))

    def fetch_uncertainty(self, image_id: str, method: str | None = None) -> Path | None:
        """Worker: the image's uncertainty volume (``GET /uncertainty/{image}``); ``None`` when the server
        has none (no uncertainty-capable model, or not computed yet). The method defaults to the
        strategy that picked the current sample when it is an uncertainty one."""
        sample = self.state.sample
        if method is None:
            method = sample.strategy if sample and sample.strategy in UNCERTAINTY_METHODS else UNCERTAINTY_METHODS[0]
        try:
            return self._client().download_uncertainty(image_id, self.workdir / "uncertainty", method)
        except NotFound:
            return None

    def apply_uncertainty(self, path: Path, volume_node):
        """Main thread: the uncertainty map as a scalar volume on the image grid (for a slice overlay)."""
        image = sitk.ReadImage(str(path))
        check_same_grid(image, volumes.volume_grid(volume_node), "the uncertainty map")
        node = volumes.add_volume(self.scene, sitk.Cast(image, sitk.sitkFloat32), f"{volume_node.GetName()} uncertainty")
        display = node.GetDisplayNode()
        if display is not None:
            array = sitk.GetArrayViewFromImage(image)
            display.SetAutoWindowLevel(False)
            display.SetWindowLevelMinMax(float(array.min()), float(array.max()) or 1.0)
        return node

    # -------------------------------------------------------------- 3D plan
    def fetch_recon(self, volume: CapturedVolume, label: sitk.Image | None = None, params: dict | None = None) -> ReconBundle | None:
        """Worker: ``POST /recon/{image}`` of ``label`` (the current segmentation; default: the stored
        final label), unpacked. ``None`` when the server has no reconstruction endpoint."""
        image_id = self.ensure_on_server(volume)
        label_path = None
        if label is not None:
            check_same_grid(label, volume.grid)
            label_path = self._tmp(".nii.gz")
            volumes.write_image(label, label_path)
        try:
            data = self._client().recon(image_id, label=label_path, params=params)
        except NotFound as exc:
            if exc.detail.strip().lower() == "not found":
                return None  # FastAPI's answer for a route that does not exist
            raise
        finally:
            if label_path is not None:
                label_path.unlink(missing_ok=True)
        return read_bundle(data, self.workdir / "recon" / f"{safe_image_id(image_id)}-{uuid.uuid4().hex[:6]}")

    def apply_recon(self, bundle: ReconBundle, volume_node=None) -> PlanResult:
        """Main thread: model nodes, measures table and territories (if any) of a bundle."""
        self.clear_plan()
        nodes = models.load_bundle_models(self.scene, bundle)
        table = tables.measures_table(self.scene, bundle.measure_rows())
        territories = None
        if bundle.territories is not None and volume_node is not None:
            label = sitk.ReadImage(str(bundle.territories))
            values = [int(v) for v in np.unique(sitk.GetArrayViewFromImage(label)) if v]
            mapping = bundle.territory_names(values)
            territories = segments.load_labelmap_as_segmentation(self.scene, label, volume_node, mapping, "Territories")
        self.plan = PlanResult(nodes, table, territories, "server")
        return self.plan

    def local_plan(self, segmentation_node, volume_node) -> PlanResult:
        """Main thread: a plan from the segmentation itself (closed surfaces + volumes) when the server
        has no reconstruction."""
        segments.ensure_converters()
        self.clear_plan()
        segmentation_node.CreateClosedSurfaceRepresentation()
        grid = volumes.volume_grid(volume_node)
        voxel_ml = float(np.prod(grid.spacing)) / 1000.0
        label = segments.label_image(segmentation_node, volume_node)
        counts = np.bincount(sitk.GetArrayViewFromImage(label).ravel())
        values = segments.label_values(segmentation_node)
        segmentation = segmentation_node.GetSegmentation()
        nodes, rows = [], []
        import vtk

        for segment_id, value in sorted(values.items(), key=lambda kv: kv[1]):
            segment = segmentation.GetSegment(segment_id)
            polydata = segmentation_node.GetClosedSurfaceInternalRepresentation(segment_id) or vtk.vtkPolyData()
            volume_ml = counts[value] * voxel_ml if value < len(counts) else 0.0
            rows.append((segment.GetName(), "volume_ml", f"{volume_ml:.1f}"))
            if polydata.GetNumberOfPoints() == 0:
                continue
            copy = vtk.vtkPolyData()
            copy.DeepCopy(polydata)
            opacity = 0.35 if segment_id == "liver" else 1.0
            nodes.append(models.add_model(self.scene, copy, segment.GetName(), segment.GetColor(), opacity))
        table = tables.measures_table(self.scene, rows)
        self.plan = PlanResult(nodes, table, None, "local")
        return self.plan

    def clear_plan(self) -> None:
        """Remove the nodes of the previous plan."""
        if self.plan is None:
            return
        for node in [*self.plan.models, self.plan.table, self.plan.territories]:
            if node is not None and node.GetScene() is self.scene:
                self.scene.RemoveNode(node)
        self.plan = None

    def export_plan(self, folder: str | Path, fmt: str = "stl") -> list[Path]:
        """Write the plan's models (STL/OBJ/VTP/PLY/glTF) and the measures (CSV) to ``folder``."""
        if self.plan is None:
            raise RuntimeError("make a 3D plan first")
        folder = Path(folder)
        paths = models.export_models(self.plan.models, folder, fmt)
        csv = folder / "measures.csv"
        lines = ["structure,measure,value"] + [
            ",".join('"' + str(v).replace('"', '""') + '"' for v in row) for row in tables.table_rows(self.plan.table)
        ]
        csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [*paths, csv]


def _segment_or_fail(segment: str) -> str:
    if not segment:
        raise ValueError("select the segment to edit first")
    return segment


def _label_suffix(filename: str) -> str:
    name = filename.lower()
    for suffix in (".nii.gz", ".seg.nrrd", ".nrrd", ".nii", ".mha"):
        if name.endswith(suffix):
            return ".nrrd" if suffix == ".seg.nrrd" else suffix
    return ".nii.gz"

