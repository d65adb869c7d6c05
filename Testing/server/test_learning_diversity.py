"""The ``mc_dropout_diverse`` strategy: uncertain, but not a near-duplicate of what is labelled or being labelled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from medseg_server.activelearning.diversity import describe, diverse_pick
from medseg_server.activelearning.uncertainty import (
    UncertaintyStore,
    image_features,
    image_uncertainty_and_features,
)
from medseg_server.activelearning.uncertainty_strategies import DiverseUncertaintyStrategy
from medseg_server.datastore import LocalDatastore
from medseg_server.models.auto_seg import STARTER_DIR
from medseg_server.models.bundle import load_bundle
from testdata import make_ct

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _probs(labels: np.ndarray, classes: int = 3) -> np.ndarray:
    return np.stack([(labels == c).astype(np.float32) for c in range(classes)])


def test_descriptor_measures_body_size_organ_volume_and_contrast() -> None:
    small = np.zeros((10, 20, 20), np.float32)
    small[2:8, 5:15, 5:15] = 0.5
    big = np.zeros_like(small)
    big[1:9, 2:18, 2:18] = 0.5
    organ = np.zeros(small.shape, np.uint8)
    organ[3:6, 6:10, 6:10] = 1
    brighter = small.copy()
    brighter[organ == 1] = 0.8
    f_small, f_big = describe(small, _probs(organ), [2.0] * 3), describe(big, _probs(organ), [2.0] * 3)
    f_bright = describe(brighter, _probs(organ), [2.0] * 3)
    assert len(f_small) == 2 + 2 * 2  # body volume + body mean, then volume + mean per foreground class
    assert f_big[0] > f_small[0] and f_small[2:] == f_big[2:]  # only the body changed
    assert f_small[0] == pytest.approx(np.log(6 * 10 * 10 * 8 / 1000))  # log mL at 2 mm voxels
    assert f_small[2] == pytest.approx(np.log1p(3 * 4 * 4 * 8 / 1000)) and f_small[3] == pytest.approx(0.5)
    assert f_bright[3] == pytest.approx(0.8) and f_bright[3] > f_small[3]
    assert f_small[5] == pytest.approx(f_small[1])  # class 2 not predicted: the body mean stands in


def test_diverse_pick_skips_near_duplicates_but_stays_among_the_uncertain() -> None:
    scores = {"dup": 0.9, "new": 0.8, "mid": 0.5, "far_but_sure": 0.1, "e": 0.05, "f": 0.04}
    features = {"dup": [0.1, 0.0], "new": [3.0, 1.0], "mid": [1.0, 1.0], "far_but_sure": [10.0, -8.0],
                "e": [0.0, 0.1], "f": [0.2, 0.2]}
    labelled = [[0.0, 0.0]]
    pick, info = diverse_pick(scores, features, labelled)
    assert pick == "new" and info["shortlist"] == 2 and info["rank"] == 2 and info["distance"] > 0
    # the most uncertain wins when there is nothing to compare with, or nothing is described
    assert diverse_pick(scores, features, [])[0] == "dup"
    assert diverse_pick(scores, {}, labelled)[0] == "dup"
    # a larger shortlist reaches farther, still never below it
    assert diverse_pick(scores, features, labelled, fraction=0.5)[0] == "new"
    assert diverse_pick(scores, features, labelled, fraction=1.0)[0] == "far_but_sure"
    with pytest.raises(ValueError):
        diverse_pick({}, features, labelled)


def test_strategy_returns_unlocked_ids_and_avoids_what_others_are_labelling(studies: Path, tmp_path: Path) -> None:
    for i in range(3, 7):
        sitk.WriteImage(make_ct(seed=i)[0], str(studies / f"case_{i:03d}.nii.gz"), True)
    datastore = LocalDatastore(studies)
    datastore.save_label_image("case_000", "final", make_ct(seed=0)[1], user="tester", info={})
    store = UncertaintyStore(tmp_path / "uncertainty")
    strategy = DiverseUncertaintyStrategy("mc_dropout", store, seed=0)
    assert strategy.name == "mc_dropout_diverse"
    # nothing scored yet: a random unlabelled image, and the answer says so
    image_id, reason = strategy.select(datastore, {})
    assert image_id in datastore.unlabelled_images("final") and reason["score"] is None
    # hand-made records (model version 3) so the geometry is known: case_000 labelled at the origin
    layout = {"case_001": (0.9, [0.1, 0.0]), "case_002": (0.85, [5.1, 0.0]), "case_003": (0.8, [5.1, 0.0]),
              "case_004": (0.7, [0.0, 0.2]), "case_005": (0.1, [-9.0, 0.0]), "case_006": (0.05, [0.0, -9.0])}
    for image_id, (score, feats) in layout.items():
        store.put(image_id, {"mc_dropout": score, "features": feats, "model_version": 3}, {})
    store.put("case_000", {"features": [0.0, 0.0], "model_version": 3}, {})
    image_id, reason = strategy.select(datastore, {})
    assert image_id == "case_002"  # top 2 of 6 = case_001 (a near-duplicate of case_000) and case_002
    assert reason["score"] == pytest.approx(0.85) and reason["uncertainty_rank"] == 2 and reason["reference"] == 1
    assert reason["model_version"] == 3 and reason["distance"] > 1 and "farthest" in reason["reason"]
    # case_002 leased to another annotator: its duplicate case_003 is not asked for, case_001 is farther
    image_id, reason = strategy.select(datastore, {"exclude": ["case_002"]})
    assert image_id == "case_001" and reason["reference"] == 2  # shortlist case_001 / case_003
    locked = {"case_002", "case_001"}.__contains__
    image_id, reason = strategy.select(datastore, {"is_locked": locked})
    assert image_id == "case_004" and reason["reference"] == 3  # shortlist case_003 (duplicate) / case_004
    # descriptors of an older model are not mixed with the candidates' (no reference: most uncertain)
    store.put("case_000", {"features": [0.0, 0.0], "model_version": 2}, {})
    image_id, reason = strategy.select(datastore, {})
    assert image_id == "case_001" and reason["reference"] == 0
    everything = datastore.unlabelled_images("final")
    assert strategy.select(datastore, {"exclude": everything}) is None


def test_scoring_run_describes_images_with_the_real_network(studies: Path) -> None:
    bundle = load_bundle(STARTER_DIR)
    image, label = make_ct(seed=1)
    scores, volumes, features = image_uncertainty_and_features(bundle.net, image, bundle.config, torch.device("cpu"),
                                                               samples=2, methods=("mc_dropout",))
    plain = image_features(bundle.net, image, bundle.config, torch.device("cpu"))
    n_classes = len(bundle.config["labels"]) + 1
    assert len(features) == len(plain) == 2 + 2 * (n_classes - 1)
    assert np.all(np.isfinite(features)) and scores["mc_dropout"] >= 0 and "mc_dropout" in volumes
    assert features[0] == pytest.approx(plain[0])  # the body does not depend on the model's answer
