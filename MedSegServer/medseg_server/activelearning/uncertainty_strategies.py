"""Active-learning strategies that pick the unlabelled image the model is least sure about.

The request may carry ``exclude`` (ids leased to other annotators) and, from Python,
``is_locked`` (a callable ``image_id -> bool``); neither kind is ever returned.
"""

from __future__ import annotations

import random
from typing import Any

from ..datastore import LocalDatastore
from .class_scores import REASONS as CLASS_REASONS
from .diversity import diverse_pick
from .strategies import Strategy
from .uncertainty import UncertaintyStore

REASONS = {"mc_dropout": "highest MC-dropout entropy", "tta": "highest test-time-augmentation entropy",
           **CLASS_REASONS}


def unlocked_candidates(strategy: Strategy, datastore: LocalDatastore, request: dict[str, Any]) -> list[str]:
    """Unlabelled images minus ``exclude`` minus those ``is_locked`` says another annotator holds."""
    pool = strategy.candidates(datastore, request)
    is_locked = request.get("is_locked")
    return [i for i in pool if not is_locked(i)] if callable(is_locked) else pool


class UncertaintyStrategy(Strategy):
    """Highest stored uncertainty score wins; unscored images fall back to a random pick (said so)."""

    def __init__(self, method: str, store: UncertaintyStore, seed: int | None = None) -> None:
        self.method = method
        self.name = method
        self.description = f"Unlabelled image with the {REASONS[method]} under the published model"
        self.store = store
        self._rng = random.Random(seed)

    def select(self, datastore, request):
        pool = unlocked_candidates(self, datastore, request)
        if not pool:
            return None
        scores = self.store.scores(self.method)
        scored = [(scores[i][0], i) for i in pool if i in scores]
        if not scored:
            pick = self._rng.choice(pool)
            return pick, {"reason": "no uncertainty computed yet for these images: random choice", "score": None,
                          "pool": len(pool), "scored": 0}
        score, pick = max(scored)
        record = scores[pick][1]
        return pick, {"reason": REASONS[self.method], "score": score, "model_version": record.get("model_version"),
                      "pool": len(pool), "scored": len(scored)}


class DiverseUncertaintyStrategy(UncertaintyStrategy):
    """Among the most uncertain third of the scored candidates, the one least like the labelled images.

    "Labelled" means with a ``final`` label, plus the images leased to other annotators (``exclude`` /
    ``is_locked``): they are about to be labelled, so a second near-duplicate is not worth asking for.
    Descriptors come from the same scoring run (same model version) as the candidates' scores; without
    them the most uncertain image wins, and the reason says why.
    """

    def __init__(self, method: str, store: UncertaintyStore, seed: int | None = None) -> None:
        super().__init__(method, store, seed)
        self.name = f"{method}_diverse"
        self.description = (f"Among the unlabelled images with the {REASONS[method]} (top third), the one least "
                            "like the labelled images (body size, organ volumes, contrast)")

    def select(self, datastore, request):
        pool = unlocked_candidates(self, datastore, request)
        if not pool:
            return None
        scores = self.store.scores(self.method)
        scored = {i: scores[i][0] for i in pool if i in scores}
        if not scored:
            return super().select(datastore, request)
        top = max(scored, key=lambda i: (scored[i], i))
        version = scores[top][1].get("model_version")
        features = self.store.features(version)
        taken = set(datastore.list_images()) - set(pool)  # labelled, leased or locked
        reference = [features[i] for i in sorted(taken) if i in features]
        pick, details = diverse_pick(scored, features, reference)
        return pick, {"reason": f"{REASONS[self.method]} among the top {details['shortlist']}, "
                                f"{details['diversity']}", "score": scored[pick], "model_version": version,
                      "pool": len(pool), "scored": len(scored), "uncertainty_rank": details["rank"],
                      "distance": details["distance"], "reference": len(reference)}
