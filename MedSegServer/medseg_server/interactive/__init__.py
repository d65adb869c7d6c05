"""Interactive segmentation engine: sessions of clicks, scribbles, boxes and sparse slices.

Image-driven (no training data): an intensity model learned from the user's seeds, connected
propagation with bridges cut by opening, a marker watershed competition for negative seeds,
multi-scale Hessian vesselness for tubular targets, and shape interpolation between sparse
annotated slices. A learned model can add a prior through ``prior_provider``.
"""

from .interactions import Interaction, InteractionError, parse
from .session import InteractiveSession, PriorProvider, Update

__all__ = ["Interaction", "InteractionError", "InteractiveSession", "PriorProvider", "Update", "parse"]
