"""Selection strategies for ``POST /activelearning/{strategy}``."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any

from ..datastore import LocalDatastore


class Strategy(ABC):
    """Picks the next image to label among those without a ``final`` label."""

    name: str = "strategy"
    description: str = ""

    def info(self) -> dict[str, Any]:
        return {"description": self.description}

    def candidates(self, datastore: LocalDatastore, request: dict[str, Any]) -> list[str]:
        """Unlabelled images minus those the request excludes (e.g. leased to someone else)."""
        excluded = set(request.get("exclude", []) or [])
        return [i for i in datastore.unlabelled_images("final") if i not in excluded]

    @abstractmethod
    def select(self, datastore: LocalDatastore, request: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """``(image_id, reason)`` or ``None`` when nothing is left."""


class RandomStrategy(Strategy):
    name = "random"
    description = "Random unlabelled image"

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def select(self, datastore, request):
        pool = self.candidates(datastore, request)
        return (self._rng.choice(pool), {"reason": "random choice", "pool": len(pool)}) if pool else None


class FirstStrategy(Strategy):
    name = "first"
    description = "First unlabelled image in ID order"

    def select(self, datastore, request):
        pool = self.candidates(datastore, request)
        return (pool[0], {"reason": "first in order", "pool": len(pool)}) if pool else None
