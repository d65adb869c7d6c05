"""Uncertainty strategies on a real datastore: valid, unlocked, explained picks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from medseg_server.activelearning import RandomStrategy
from medseg_server.activelearning.uncertainty import UncertaintyStore, image_uncertainty
from medseg_server.activelearning.uncertainty_strategies import UncertaintyStrategy
from medseg_server.datastore import LocalDatastore
from medseg_server.models.auto_seg import STARTER_DIR
from medseg_server.models.bundle import load_bundle
from medseg_server.models.predict import entropy_map, uncertainty_score
from testdata import make_ct

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_entropy_is_zero_when_samples_agree_and_high_when_they_do_not() -> None:
    certain = np.zeros((6, 2, 2, 2), np.float32)
    certain[1] = 1.0
    assert float(entropy_map([certain, certain]).max()) < 1e-6
    other = np.zeros_like(certain)
    other[2] = 1.0
    split = entropy_map([certain, other])
    assert np.allclose(split, np.log(2), atol=1e-5)
    assert uncertainty_score([certain, other], split) == pytest.approx(np.log(2), abs=1e-5)


def test_strategies_return_valid_unlocked_ids_with_a_reason(studies: Path, tmp_path: Path) -> None:
    for i in (3, 4):
        sitk.WriteImage(make_ct(seed=i)[0], str(studies / f"case_{i:03d}.nii.gz"), True)
    datastore = LocalDatastore(studies)
    datastore.save_label_image("case_000", "final", make_ct(seed=0)[1], user="tester", info={})
    unlabelled = set(datastore.unlabelled_images("final"))
    assert unlabelled == {"case_001", "case_002", "case_003", "case_004"}
    store = UncertaintyStore(tmp_path / "uncertainty")
    strategy = UncertaintyStrategy("mc_dropout", store, seed=0)
    # nothing scored yet: a random unlabelled image, and the answer says so
    image_id, reason = strategy.select(datastore, {})
    assert image_id in unlabelled and reason["score"] is None and "no uncertainty" in reason["reason"]
    bundle = load_bundle(STARTER_DIR)
    for image_id in ("case_001", "case_002", "case_003"):
        scores, volumes = image_uncertainty(bundle.net, datastore.read_image(image_id), bundle.config,
                                            torch.device("cpu"), samples=2, methods=("mc_dropout",))
        store.put(image_id, {**scores, "model_version": 0}, volumes)
    ranked = sorted(store.scores("mc_dropout").items(), key=lambda kv: kv[1][0], reverse=True)
    order = [k for k, _ in ranked]
    image_id, reason = strategy.select(datastore, {})
    assert image_id == order[0] and reason["score"] == pytest.approx(ranked[0][1][0]) and reason["scored"] == 3
    # leased to someone else (exclude list) or locked (callable): never returned
    locked = {order[1]}
    image_id, reason = strategy.select(datastore, {"exclude": [order[0]], "is_locked": locked.__contains__})
    assert image_id == order[2]
    image_id, _ = strategy.select(datastore, {"exclude": order})
    assert image_id == "case_004"  # only the unscored one is left
    assert strategy.select(datastore, {"exclude": sorted(unlabelled)}) is None
    for _ in range(10):
        picked, _ = RandomStrategy(seed=None).select(datastore, {"exclude": order})
        assert picked == "case_004"
