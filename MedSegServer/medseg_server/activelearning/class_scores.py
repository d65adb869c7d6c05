"""Class-balanced uncertainty scores: every structure counts as much as the others, whatever its size.

The pooled score (:func:`..models.predict.uncertainty_score`) averages the entropy over all predicted
foreground voxels, so the liver (thousands of voxels) outweighs the IVC (tens); yet the test Dice, and
an annotator's work, weigh each structure alike. Both scores here take one number per class, inside
the region where any sample predicts that class, then the mean over the classes found:

- :func:`class_balanced_entropy`: mean voxel entropy (of the mean of the samples) in the class's region;
- :func:`expected_dice_error`: 1 - mean pairwise soft Dice between the samples' maps of the class
  (how much two equally likely answers disagree, in the unit of the metric).

An image where no sample predicts any foreground scores the mean entropy of the whole volume.
Give ``classes`` = the structures the model has learned (:func:`learned_classes`): a class it has not
learned has small, random predicted blobs whose uncertainty is noise, and balancing would give that noise
the same weight as the liver (measured: bench-results/al/learning-class-scores.md).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations

import numpy as np


def _regions(samples: list[np.ndarray], classes: list[int] | None) -> dict[int, np.ndarray]:
    """``{class: voxels any sample calls that class}`` for the foreground classes found (optionally only ``classes``)."""
    winners = [probs.argmax(axis=0) for probs in samples]
    wanted = range(1, samples[0].shape[0]) if classes is None else classes
    out = {}
    for c in wanted:
        region = np.zeros(winners[0].shape, bool)
        for w in winners:
            region |= w == c
        if region.any():
            out[int(c)] = region
    return out


def class_balanced_entropy(samples: list[np.ndarray], entropy: np.ndarray, classes: list[int] | None = None) -> float:
    """Mean over the predicted classes of the mean ``entropy`` inside each class's predicted region."""
    regions = _regions(samples, classes)
    if not regions:
        return float(entropy.mean())
    return float(np.mean([entropy[r].mean() for r in regions.values()]))


def soft_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Soft Dice of two probability maps: 2 sum(a b) / (sum a + sum b); 1 when both are empty."""
    total = float(a.sum() + b.sum())
    return 1.0 if total <= 0 else float(2.0 * (a * b).sum() / total)


def expected_dice_error(samples: list[np.ndarray], entropy: np.ndarray, classes: list[int] | None = None) -> float:
    """Mean over the predicted classes of 1 - mean pairwise soft Dice between the samples, inside the
    class's predicted region (needs at least two samples)."""
    if len(samples) < 2:
        raise ValueError("expected_dice_error needs at least two samples")
    regions = _regions(samples, classes)
    if not regions:
        return float(entropy.mean())
    errors = []
    for c, region in regions.items():
        maps = [probs[c][region] for probs in samples]
        errors.append(1.0 - float(np.mean([soft_dice(a, b) for a, b in combinations(maps, 2)])))
    return float(np.mean(errors))


ClassScore = Callable[[list[np.ndarray], np.ndarray, "list[int] | None"], float]

# strategy name -> score computed from the MC-dropout samples (stored under that name by the scoring job)
CLASS_SCORES: dict[str, ClassScore] = {
    "mc_dropout_classes": class_balanced_entropy,
    "mc_dropout_dice": expected_dice_error,
}
REASONS = {
    "mc_dropout_classes": "highest MC-dropout entropy, every learned structure weighted alike",
    "mc_dropout_dice": "highest expected Dice error between MC-dropout samples, every learned structure weighted alike",
}
LEARNED_DICE = 0.5  # a class counts as learned when the published model's validation Dice on it reaches this


def learned_classes(labels: dict[str, int], per_class_dice: dict[str, float | None] | None) -> list[int] | None:
    """Label values of the classes the model has learned (validation Dice >= :data:`LEARNED_DICE`);
    None (= every class) when the per-class Dice is unknown or no class reaches it."""
    if not per_class_dice:
        return None
    learned = [labels[k] for k, v in per_class_dice.items() if k in labels and v is not None and v >= LEARNED_DICE]
    return sorted(learned) or None
