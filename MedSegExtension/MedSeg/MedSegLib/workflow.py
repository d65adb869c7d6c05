"""Workflow state of the module, without Slicer: server, current sample, session, segment, undo.

Everything here is plain data derived from the server's JSON answers, so the GUI only shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import MedSegError
from .interactions import INTERACTIVE_TYPES

T = TypeVar("T")

#: Strategy names preferred for "Next sample", best first (uncertainty before random).
# MedSeg's mc_dropout_dice first: in `medseg bench learning` it saved the most labelled cases (22-33 %)
PREFERRED_STRATEGIES = ("mc_dropout_dice", "uncertainty", "entropy", "tta", "mc_dropout", "epistemic", "random", "first")


class IncompatibleServer(MedSegError):
    """The server answered ``/info/`` with something the module cannot work with."""


@dataclass(frozen=True)
class ServerDescription:
    """What ``GET /info/`` says, checked and normalised."""

    name: str
    version: str
    models: dict[str, dict[str, Any]]
    labels: list[str]
    strategies: list[str]
    trainers: list[str]
    train_stats: dict[str, Any]
    datastore: dict[str, Any]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_info(cls, info: Any) -> ServerDescription:
        """Check an ``/info/`` answer; raises :class:`IncompatibleServer` with the reason."""
        if not isinstance(info, dict):
            raise IncompatibleServer(f"/info/ answered {type(info).__name__}, not a JSON object: not a MONAI Label server")
        if info.get("config"):
            raise IncompatibleServer("the server speaks an outdated MONAI Label protocol (top-level 'config' in /info/)")
        models = info.get("models")
        if not isinstance(models, dict):
            raise IncompatibleServer("/info/ has no 'models' mapping: not a MONAI Label compatible server")
        labels = info.get("labels") or []
        if isinstance(labels, dict):
            labels = [k for k, _ in sorted(labels.items(), key=lambda kv: kv[1])]
        return cls(
            name=str(info.get("name") or "unnamed server"),
            version=str(info.get("version") or ""),
            models={str(k): dict(v or {}) for k, v in models.items()},
            labels=[str(x) for x in labels],
            strategies=list(info.get("strategies") or {}),
            trainers=list(info.get("trainers") or {}),
            train_stats=dict(info.get("train_stats") or {}),
            datastore=dict(info.get("datastore") or {}),
            raw=info,
        )

    @property
    def title(self) -> str:
        return f"{self.name} {self.version}".strip()

    def model_names(self, types: tuple[str, ...] | None = None, exclude: tuple[str, ...] = ()) -> list[str]:
        """Model names (of the given ``types``), in the server's order."""
        return [
            name
            for name, desc in self.models.items()
            if (types is None or desc.get("type") in types) and desc.get("type") not in exclude
        ]

    def auto_models(self) -> list[str]:
        """Models that segment without user input (interactive ones need clicks)."""
        return self.model_names(exclude=(*INTERACTIVE_TYPES, "classification", "reconstruction"))

    def interactive_models(self) -> list[str]:
        """Models that take clicks (deepedit, deepgrow, interactive, scribbles)."""
        return self.model_names(INTERACTIVE_TYPES)

    def engine_model(self) -> str:
        """MedSeg's interactive engine (scribbles, sparse slices, sessions): "" when the server lacks it.

        Recognised by its config (``session_ttl_s``, the session lease), else by the name ``interactive``.
        """
        for name in self.interactive_models():
            if "session_ttl_s" in ((self.models[name] or {}).get("config") or {}):
                return name
        return "interactive" if "interactive" in self.interactive_models() else ""

    def reconstruction_models(self) -> list[str]:
        return self.model_names(("reconstruction",))

    def model_labels(self, model: str) -> dict[str, int]:
        """``{name: value}`` of a model's labels (a list means value = position + 1)."""
        labels = (self.models.get(model) or {}).get("labels") or {}
        if isinstance(labels, dict):
            return {str(k): int(v) for k, v in labels.items()}
        return {str(name): i + 1 for i, name in enumerate(labels)}

    def model_config(self, model: str) -> dict[str, Any]:
        """A model's config as ``/infer`` params (a list-valued option sends its first element)."""
        config = (self.models.get(model) or {}).get("config") or {}
        return {k: (v[0] if isinstance(v, list) and v else v) for k, v in config.items()}

    def default_strategy(self) -> str | None:
        """The strategy "Next sample" uses: an uncertainty one if offered, else random/first."""
        for preferred in PREFERRED_STRATEGIES:
            for name in self.strategies:
                if preferred in name.lower():
                    return name
        return self.strategies[0] if self.strategies else None

    def model_version(self, model: str) -> str:
        """A short description of the model version in use (from ``train_stats`` and the model entry)."""
        desc = self.models.get(model) or {}
        for key in ("version", "model_version"):
            if desc.get(key) is not None:
                return str(desc[key])
        stats = self.train_stats.get(model) or {}
        if stats.get("best_metric") is not None:
            return f"trained, best metric {float(stats['best_metric']):.3f}"
        return "untrained" if not stats else "trained"


@dataclass
class Sample:
    """The case being labelled: its datastore ID and why it was picked."""

    image_id: str
    name: str = ""
    reason: str = ""
    score: float | None = None
    strategy: str = ""
    on_server: bool = True

    @classmethod
    def from_next_sample(cls, answer: dict[str, Any], strategy: str = "") -> Sample:
        """From a ``POST /activelearning/{strategy}`` answer."""
        reason = answer.get("reason", "")
        score = answer.get("score")
        if isinstance(reason, dict):
            score = reason.get("score", score)
            reason = reason.get("text") or reason.get("reason") or ", ".join(f"{k}={v}" for k, v in reason.items())
        return cls(
            image_id=str(answer["id"]),
            name=str(answer.get("name") or answer["id"]),
            reason=str(reason or ""),
            score=float(score) if isinstance(score, (int, float)) else None,
            strategy=strategy,
        )

    @property
    def why(self) -> str:
        """One line for the GUI: strategy, reason and score."""
        parts = [p for p in (self.strategy, self.reason) if p]
        if self.score is not None:
            parts.append(f"score {self.score:.3g}")
        return " - ".join(parts)


class UndoStack(Generic[T]):
    """Bounded stack of snapshots taken before each change the module makes."""

    def __init__(self, depth: int = 20) -> None:
        self.depth = depth
        self._items: list[tuple[str, T]] = []

    def push(self, what: str, snapshot: T) -> None:
        self._items.append((what, snapshot))
        del self._items[: max(0, len(self._items) - self.depth)]

    def pop(self) -> tuple[str, T]:
        if not self._items:
            raise IndexError("nothing to undo")
        return self._items.pop()

    def clear(self) -> None:
        self._items.clear()

    @property
    def next_label(self) -> str:
        """What undo would revert ("" when nothing)."""
        return self._items[-1][0] if self._items else ""

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class EngineSession:
    """An interactive-engine session on one server image, and what the server holds per segment.

    ``synced`` maps a segment ID to the fingerprint of the mask the server last answered for it; a
    segment whose local mask no longer matches (edited in Slicer, undone, or never sent) is sent again
    as the mask to refine before the next scribbles.
    """

    session_id: str
    image_id: str
    synced: dict[str, str] = field(default_factory=dict)


@dataclass
class WorkflowState:
    """Everything the module remembers between button clicks."""

    server: ServerDescription | None = None
    model: str = ""
    interactive_model: str = ""
    sample: Sample | None = None
    session_id: str = ""
    segment: str = ""
    undo: UndoStack = field(default_factory=UndoStack)
    last_submitted: dict[str, Any] | None = None
    engine: EngineSession | None = None

    @property
    def connected(self) -> bool:
        return self.server is not None

    def connect(self, server: ServerDescription) -> None:
        """A new server: pick default models, forget the sample and session."""
        self.server = server
        auto = server.auto_models()
        if self.model not in server.models:
            self.model = auto[0] if auto else ""
        interactive = server.interactive_models()
        if self.interactive_model not in interactive:
            self.interactive_model = interactive[0] if interactive else ""
        self.set_sample(None)

    def disconnect(self) -> None:
        self.server = None
        self.set_sample(None)

    def set_sample(self, sample: Sample | None) -> None:
        """A new case: the session and undo history belong to the old one."""
        self.sample = sample
        self.session_id = ""
        self.engine = None
        self.undo.clear()
        self.last_submitted = None


@dataclass(frozen=True)
class CohortProgress:
    """Labelled / total and who labelled what, from ``GET /datastore/?output=all``."""

    total: int
    labelled: int
    by_user: dict[str, int]
    unlabelled: list[str]

    @property
    def fraction(self) -> float:
        return self.labelled / self.total if self.total else 0.0

    @property
    def summary(self) -> str:
        who = ", ".join(f"{user}: {n}" for user, n in sorted(self.by_user.items(), key=lambda kv: -kv[1]))
        text = f"{self.labelled} / {self.total} labelled"
        return f"{text} ({who})" if who else text


def cohort_progress(datastore_all: dict[str, Any], tag: str = "final") -> CohortProgress:
    """Count images with a ``tag`` label and their authors."""
    objects = (datastore_all or {}).get("objects") or {}
    by_user: dict[str, int] = {}
    unlabelled = []
    labelled = 0
    for image_id, obj in objects.items():
        label = ((obj or {}).get("labels") or {}).get(tag)
        if not label:
            unlabelled.append(str(image_id))
            continue
        labelled += 1
        info = label.get("info") or {}
        user = str(info.get("user") or info.get("client_id") or "unknown")
        by_user[user] = by_user.get(user, 0) + 1
    return CohortProgress(len(objects), labelled, by_user, sorted(unlabelled))


@dataclass(frozen=True)
class TrainProgress:
    """A training task record (``GET /train/``) for the GUI."""

    status: str
    fraction: float
    text: str

    @property
    def running(self) -> bool:
        return self.status in ("SUBMITTED", "RUNNING")


def train_progress(record: Any) -> TrainProgress:
    """Turn the latest task record into a status, a 0..1 fraction and a line of text."""
    if isinstance(record, list):
        record = record[-1] if record else None
    if not record:
        return TrainProgress("NONE", 0.0, "No training yet")
    status = str(record.get("status", "UNKNOWN"))
    progress = record.get("progress") or {}
    epoch, total = progress.get("epoch"), progress.get("total_epochs")
    fraction = float(epoch) / float(total) if epoch is not None and total else (1.0 if status == "DONE" else 0.0)
    parts = [status.lower()]
    model = (record.get("request") or {}).get("model") or record.get("model")
    if model:
        parts.insert(0, str(model))
    if epoch is not None and total:
        parts.append(f"epoch {epoch}/{total}")
    for key, label in (("loss", "loss"), ("best_metric", "best"), ("val_dice", "val Dice")):
        if progress.get(key) is not None:
            parts.append(f"{label} {float(progress[key]):.3f}")
    if record.get("error"):
        parts.append(str(record["error"]).strip().splitlines()[-1][:200])
    return TrainProgress(status, max(0.0, min(1.0, fraction)), ", ".join(parts))


def train_history(records: Any) -> list[dict[str, Any]]:
    """Rows (model, status, start, end, best metric) of ``GET /train/?all=true``."""
    if isinstance(records, dict):
        records = [records]
    rows = []
    for rec in records or []:
        progress = rec.get("progress") or {}
        result = rec.get("result") or {}
        rows.append({
            "model": (rec.get("request") or {}).get("model", ""),
            "status": rec.get("status", ""),
            "start": rec.get("start_ts", ""),
            "end": rec.get("end_ts", ""),
            "best_metric": progress.get("best_metric", result.get("best_metric") if isinstance(result, dict) else None),
        })
    return rows
