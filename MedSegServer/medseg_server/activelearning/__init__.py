"""Active-learning strategies: which image should be labelled next."""

from .strategies import FirstStrategy, RandomStrategy, Strategy

__all__ = ["FirstStrategy", "RandomStrategy", "Strategy"]
