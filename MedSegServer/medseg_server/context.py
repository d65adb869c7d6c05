"""Everything a request handler needs, built once per app by :func:`build_context`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .activelearning import FirstStrategy, RandomStrategy, Strategy
from .datastore import LocalDatastore
from .datastore.factory import open_datastore
from .models.registry import ModelRegistry, default_registry
from .models.threshold import ThresholdLiverModel
from .sessions import SessionStore
from .settings import Settings
from .training import BackgroundJob, TaskRunner
from .training.learning_setup import install_learning
from .training.scoring_jobs import DiceScoring
from .training.threshold_trainer import ThresholdTrainer


@dataclass
class AppContext:
    """The server's state: no module-level globals anywhere."""

    settings: Settings
    datastore: LocalDatastore
    models: ModelRegistry
    trainers: dict[str, BackgroundJob]
    strategies: dict[str, Strategy]
    scoring: dict[str, BackgroundJob]
    sessions: SessionStore
    train_runner: TaskRunner
    scoring_runner: TaskRunner
    extras: dict[str, Any] = field(default_factory=dict)
    final_labels_since_train: int = 0

    def close(self) -> None:
        """Stop background work (server shutdown)."""
        self.train_runner.shutdown()
        self.scoring_runner.shutdown()


def build_context(settings: Settings) -> AppContext:
    """Open the datastore and register the models, trainers, strategies and scoring methods."""
    datastore = open_datastore(settings)  # the studies folder, or a PACS with --dicomweb
    state = settings.state_dir
    models = default_registry(state / "models", interactive_prior=settings.interactive_prior)
    trainers: dict[str, BackgroundJob] = {}
    threshold = models.get("threshold_liver")
    if isinstance(threshold, ThresholdLiverModel):
        trainers[threshold.name] = ThresholdTrainer(threshold)
    strategies: dict[str, Strategy] = {s.name: s for s in (RandomStrategy(), FirstStrategy())}
    scoring: dict[str, BackgroundJob] = {"dice": DiceScoring(str(datastore.root))}
    ctx = AppContext(
        settings=settings,
        datastore=datastore,
        models=models,
        trainers=trainers,
        strategies=strategies,
        scoring=scoring,
        sessions=SessionStore(state / "sessions", settings.session_ttl_s),
        train_runner=TaskRunner("train", state),
        scoring_runner=TaskRunner("scoring", state),
    )
    install_learning(ctx)  # auto_seg trainer, uncertainty, active-learning strategies
    return ctx
