"""Models: one object per inference task, registered by name."""

from .base import InferRequest, InferResult, InferTask, ModelError
from .registry import ModelRegistry, default_registry

__all__ = ["InferRequest", "InferResult", "InferTask", "ModelError", "ModelRegistry", "default_registry"]
