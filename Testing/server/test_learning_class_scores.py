"""Class-balanced uncertainty (``mc_dropout_classes``, ``mc_dropout_dice``): a small structure counts as much as
a large one; the scoring job stores the scores and the server serves both strategies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import requests

from livetools import wait_task
from medseg_server.activelearning.class_scores import (
    class_balanced_entropy,
    expected_dice_error,
    learned_classes,
)
from medseg_server.labels import LABELS
from medseg_server.models.predict import entropy_map, uncertainty_score

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LIVER, IVC, TUMOUR = LABELS["liver"], LABELS["ivc"], LABELS["tumour"]


def _samples(uncertain_class: int, uncertain_voxels: int) -> list[np.ndarray]:
    """Two MC samples over 6 classes: a 1000-voxel liver and a 20-voxel IVC, both certain, except
    ``uncertain_voxels`` of ``uncertain_class`` which one sample calls background."""
    a = np.zeros((6, 10, 10, 12), np.float32)
    a[0] = 1.0
    a[:, :, :, :10] = 0.0
    a[LIVER, :, :, :10] = 1.0  # 1000 liver voxels
    a[:, :2, :10, 10:] = 0.0
    a[IVC, :2, :10, 10:] = 1.0  # 40 IVC voxels
    a[0, 2:, :, 10:] = 1.0
    b = a.copy()
    cols = np.argwhere(a[uncertain_class] > 0.5)[:uncertain_voxels]
    for z, y, x in cols:
        b[:, z, y, x] = 0.0
        b[0, z, y, x] = 1.0
    return [a, b]


def test_an_uncertain_small_structure_outranks_the_same_uncertainty_in_a_large_one() -> None:
    small, large = _samples(IVC, 20), _samples(LIVER, 20)  # the same 20 disputed voxels
    e_small, e_large = entropy_map(small), entropy_map(large)
    # the pooled score cannot tell them apart: 20 disputed voxels among 1040 predicted foreground voxels
    assert uncertainty_score(small, e_small) == pytest.approx(uncertainty_score(large, e_large))
    assert class_balanced_entropy(small, e_small) > 5 * class_balanced_entropy(large, e_large)
    assert expected_dice_error(small, e_small) > 5 * expected_dice_error(large, e_large)
    # restricted to the liver, the IVC's doubt is not counted
    assert class_balanced_entropy(small, e_small, [LIVER]) == pytest.approx(0.0, abs=1e-6)
    # samples that agree: no expected error; one sample is not enough to measure disagreement
    agree = [small[0], small[0]]
    assert expected_dice_error(agree, entropy_map(agree)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        expected_dice_error(small[:1], e_small)


def test_a_class_the_model_has_not_learned_is_left_out() -> None:
    per_class = {"liver": 0.82, "ivc": 0.71, "portal_vein": 0.17, "tumour": None, "unknown": 0.9}
    assert learned_classes(LABELS, per_class) == [LIVER, IVC]
    assert learned_classes(LABELS, None) is None  # starter / upload: every class
    assert learned_classes(LABELS, {"tumour": 0.1}) is None


def test_scoring_job_stores_the_class_scores_and_the_server_serves_both_strategies(live_server) -> None:
    url = live_server.url
    r = requests.post(f"{url}/uncertainty/", json={"samples": 2, "methods": ["mc_dropout"]}, timeout=30)
    assert r.status_code == 200, r.text
    task = wait_task(url, "/scoring/")
    assert task["status"] == "DONE", task
    scores = requests.get(f"{url}/uncertainty/", timeout=30).json()
    assert set(scores) == {"case_000", "case_001", "case_002"}
    for name in ("mc_dropout_classes", "mc_dropout_dice"):
        assert all(np.isfinite(s[name]) and s[name] >= 0 for s in scores.values())
        best = max(scores, key=lambda i: scores[i][name])
        pick = requests.post(f"{url}/activelearning/{name}", json={}, timeout=30).json()
        assert pick["id"] == best and pick["reason"]["score"] == pytest.approx(scores[best][name])
        assert "every learned structure weighted alike" in pick["reason"]["reason"]
        others = requests.post(f"{url}/activelearning/{name}", json={"exclude": [best]}, timeout=30).json()
        assert others["id"] in set(scores) - {best}


def test_scored_classes_follow_the_published_versions_validation(tmp_path: Path) -> None:
    from medseg_server.models.auto_seg import STARTER_DIR, AutoSegModel
    from medseg_server.training.learning_setup import scored_classes

    model = AutoSegModel(tmp_path / "models")
    assert scored_classes(model, STARTER_DIR, 0) == [LIVER, IVC]  # the starter's card: liver 0.90, IVC 0.85
    version = model.store.add(STARTER_DIR, {"per_class": {"liver": 0.8, "ivc": 0.4, "portal_vein": 0.2}})
    assert scored_classes(model, model.store.folder(version), version) == [LIVER]
    upload = model.store.add(STARTER_DIR, {"source": "upload", "validation_dice": None})
    assert scored_classes(model, model.store.folder(upload), upload) is None  # unknown: every class
