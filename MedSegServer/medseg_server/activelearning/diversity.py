"""Diversity for active learning: a short description of each image, and the uncertain image least like the labelled ones.

Uncertainty alone keeps choosing the same kind of case (on the phantoms: small patients), so the
picks of a round or of successive rounds can be near-duplicates. Each image is described by a few
numbers computed from the model's own answer on it (no extra network pass):

- body volume (log mL) and mean scaled intensity of the body (voxels above the HU window's floor);
- per foreground class: predicted volume (log(1 + mL)) and mean scaled intensity inside it
  (the body mean when the class is not predicted), which carries contrast phase and patient size.

:func:`diverse_pick` then shortlists the most uncertain third of the candidates and, among those,
takes the one farthest (Euclidean, features standardised over everything compared) from its nearest
labelled (or being-labelled) image: a k-center (core-set) step restricted to uncertain images.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SHORTLIST_FRACTION = 1.0 / 3.0
MIN_SHORTLIST = 2
STD_FLOOR = 0.05  # standardised distances ignore features that barely vary (a std below this counts as this)


def describe(array_zyx: np.ndarray, probs: np.ndarray, spacing: list[float]) -> list[float]:
    """Descriptor of one image from its scaled network-grid array (z, y, x) and class probabilities (C, z, y, x)."""
    voxel_ml = float(np.prod(spacing)) / 1000.0
    body = array_zyx > 0.0
    body_mean = float(array_zyx[body].mean()) if body.any() else 0.0
    out = [math.log(max(int(body.sum()), 1) * voxel_ml), body_mean]
    predicted = probs.argmax(axis=0)
    for c in range(1, probs.shape[0]):
        mask = predicted == c
        n = int(mask.sum())
        out += [math.log1p(n * voxel_ml), float(array_zyx[mask].mean()) if n else body_mean]
    return [round(v, 6) for v in out]


def standardiser(vectors: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std floored at :data:`STD_FLOOR`) of the feature vectors."""
    stack = np.asarray(vectors, float)
    return stack.mean(axis=0), np.maximum(stack.std(axis=0), STD_FLOOR)


def diverse_pick(scores: dict[str, float], features: dict[str, list[float]], reference: list[list[float]],
                 fraction: float = SHORTLIST_FRACTION) -> tuple[str, dict[str, Any]]:
    """The most uncertain ``fraction`` of ``scores`` (at least :data:`MIN_SHORTLIST`), then the one farthest
    from its nearest ``reference`` descriptor (labelled / being-labelled images); ties go to the higher score.

    Without descriptors for the shortlist or without any reference, the most uncertain image wins.
    Returns ``(image_id, details)`` with the shortlist size, the pick's uncertainty rank and distance.
    """
    if not scores:
        raise ValueError("no scored candidates")
    ranked = sorted(scores, key=lambda i: (-scores[i], i))
    size = min(len(ranked), max(MIN_SHORTLIST, math.ceil(fraction * len(ranked))))
    shortlist = [i for i in ranked[:size] if i in features]
    if not shortlist or not reference:
        why = "no labelled images described yet" if shortlist else "no descriptors for the uncertain images"
        return ranked[0], {"shortlist": size, "rank": 1, "distance": None, "diversity": why}
    mean, std = standardiser([features[i] for i in ranked if i in features] + list(reference))
    ref = (np.asarray(reference, float) - mean) / std
    distance = {i: float(np.linalg.norm(ref - (np.asarray(features[i], float) - mean) / std, axis=1).min())
                for i in shortlist}
    pick = max(shortlist, key=lambda i: (distance[i], scores[i]))
    return pick, {"shortlist": size, "rank": ranked.index(pick) + 1, "distance": round(distance[pick], 4),
                  "diversity": "farthest from the labelled images among the most uncertain"}
