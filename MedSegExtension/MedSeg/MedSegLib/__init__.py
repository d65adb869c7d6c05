"""MedSeg's Slicer-free core: the HTTP client and (later) interaction and MRML helpers.

Nothing in this package may import ``slicer``, ``qt`` or ``ctk`` at module level except the
``mrml`` sub-package, so it runs and is tested with plain Python.
"""

from .client import InferResult, MedSegClient
from .errors import ClientError, MedSegError, NotFound, ServerError, ServerUnavailable

__all__ = ["ClientError", "InferResult", "MedSegClient", "MedSegError", "NotFound", "ServerError", "ServerUnavailable"]
