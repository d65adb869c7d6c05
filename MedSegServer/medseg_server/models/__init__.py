"""Models: one object per inference task, registered by name.

Only the light interface is imported here; ``models.registry`` (which builds the MONAI networks
and so imports torch) is imported where the server is built, so ``medseg synth`` and the other
tools start without loading torch.
"""

from .base import InferRequest, InferResult, InferTask, ModelError

__all__ = ["InferRequest", "InferResult", "InferTask", "ModelError"]
