"""Tests of ``medseg bench learning``: its figures (curve averaging, interpolated label savings,
monotonicity, Dice over the chosen classes), the skewed scenario's cohort and split, weight averaging."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medseg_server.bench._learning_impl import (
    aggregate_dice,
    cases_to_reach,
    monotonic_within,
    pick_diverse,
    scenario_phases,
    split_cohort,
    summarise,
    train_round,
)
from medseg_server.models.bundle import new_bundle
from medseg_server.synth import make_cohort
from medseg_server.synth.variation import sample_variation
from medseg_server.training.seg_loop import Case, train_iterations


def run(seed: int, strategy: str, xs: list[int], ys: list[float]) -> dict:
    return {"seed": seed, "strategy": strategy,
            "curve": [{"labelled": x, "dice": y, "picked": []} for x, y in zip(xs, ys, strict=True)]}


def test_cases_to_reach_interpolates():
    assert cases_to_reach([2, 4, 6], [0.2, 0.4, 0.6], 0.5) == pytest.approx(5.0)
    assert cases_to_reach([2, 4, 6], [0.2, 0.4, 0.6], 0.1) == 2.0
    assert cases_to_reach([2, 4, 6], [0.2, 0.4, 0.6], 0.7) is None


def test_monotonic_within_tolerance():
    assert monotonic_within([0.1, 0.3, 0.29, 0.4], 0.02)
    assert not monotonic_within([0.1, 0.3, 0.25, 0.4], 0.02)
    assert monotonic_within([0.1, 0.3, 0.25, 0.4], [0.0, 0.0, 0.06, 0.0])


def test_summary_from_mean_curves():
    xs = [2, 4, 6, 8, 10]
    runs = [run(0, "random", xs, [0.1, 0.2, 0.3, 0.4, 0.5]), run(1, "random", xs, [0.1, 0.2, 0.3, 0.4, 0.5]),
            run(0, "mc_dropout", xs, [0.1, 0.3, 0.5, 0.6, 0.6]), run(1, "mc_dropout", xs, [0.1, 0.3, 0.4, 0.5, 0.6])]
    s = summarise(runs, noise_floor=0.01)
    assert s["random_final_dice"] == pytest.approx(0.5) and s["random_cases"] == 10
    mc = s["strategies"]["mc_dropout"]
    # mean curve 0.1 0.3 0.45 0.55 0.6 reaches 0.5 at 7 cases: 30 % fewer than random's 10
    assert mc["cases_to_reach_random_final"] == pytest.approx(7.0)
    assert mc["label_saving"] == pytest.approx(0.3) and mc["meets_20pct_target"] is True
    assert mc["label_saving_per_seed"] == [pytest.approx(0.4), pytest.approx(0.2)]
    assert mc["label_saving_counting_only_new_labels"] == pytest.approx(1 - 5 / 8)
    assert mc["monotonic_within_noise"] and s["strategies"]["random"]["monotonic_within_noise"]
    assert s["curves"]["mc_dropout"]["std"][2] == pytest.approx(0.0707, abs=1e-3)


def test_paired_gain_and_flat_baseline():
    xs = [0, 2, 4]
    runs = [run(0, "random", xs, [0.3, 0.29, 0.3]), run(0, "mc_dropout", xs, [0.3, 0.32, 0.34]),
            run(1, "random", xs, [0.3, 0.3, 0.3]), run(1, "mc_dropout", xs, [0.3, 0.31, 0.32])]
    s = summarise(runs, noise_floor=0.01)
    mc = s["strategies"]["mc_dropout"]
    assert mc["paired_gain_vs_random"]["per_seed"] == [pytest.approx(0.035), pytest.approx(0.015)]
    # random did not learn: reaching its final Dice at once is no saving, and the target is not claimed
    assert s["random_improved_beyond_noise"] is False
    assert mc["cases_to_reach_random_final"] == 0 and mc["meets_20pct_target"] is False


def test_dice_over_chosen_classes_per_case_and_phase():
    per_case = {"a": {"liver": 0.9, "ivc": 0.7, "portal_vein": 0.1}, "b": {"liver": 0.8},
                "c": {"portal_vein": 0.5}}
    meta = {"a": {"phase": "arterial"}, "b": {"phase": "non_contrast"}}
    out = aggregate_dice(per_case, ["liver", "ivc"], meta)
    # a: mean(0.9, 0.7) = 0.8; b: liver only (ivc absent) = 0.8; c has neither class and is left out
    assert out["per_case"] == {"a": 0.8, "b": 0.8} and out["dice"] == pytest.approx(0.8)
    assert out["per_phase"] == {"arterial": pytest.approx(0.8), "non_contrast": pytest.approx(0.8)}
    assert out["per_class"]["portal_vein"] == pytest.approx(0.3) and out["per_class"]["liver"] == pytest.approx(0.85)
    with pytest.raises(ValueError):
        aggregate_dice({"c": {"portal_vein": 0.5}}, ["liver"], meta)


def test_skewed_scenario_split_is_balanced_on_test_and_skewed_in_pool():
    phases = scenario_phases(2, {"non_contrast": 1, "arterial": 1, "portal_venous": 6}, seed=0)
    assert len(phases) == 14 and phases.count("portal_venous") == 8 and phases == scenario_phases(
        2, {"non_contrast": 1, "arterial": 1, "portal_venous": 6}, seed=0)
    ids = [f"c{i:02d}" for i in range(len(phases))]
    meta = {c: {"phase": ph} for c, ph in zip(ids, phases, strict=True)}
    args = argparse.Namespace(scenario="skewed", test_per_phase=2, cohort=Path("x"), cohort_seed=0, test=4)
    test, pool = split_cohort(args, ids, meta)
    assert sorted(test + pool) == ids and not set(test) & set(pool)
    assert sorted(meta[c]["phase"] for c in test) == ["arterial"] * 2 + ["non_contrast"] * 2 + ["portal_venous"] * 2
    assert sorted(meta[c]["phase"] for c in pool).count("portal_venous") == 6
    args.test_per_phase = 4  # only 3 non-contrast cases exist
    with pytest.raises(ValueError, match="non_contrast"):
        split_cohort(args, ids, meta)


def test_forced_phase_keeps_the_other_draws(tmp_path):
    free = sample_variation(np.random.default_rng(5))
    forced = sample_variation(np.random.default_rng(5), "non_contrast")
    assert forced.phase == "non_contrast" and {**free.as_dict(), "phase": "x"} == {**forced.as_dict(), "phase": "x"}
    with pytest.raises(ValueError):
        sample_variation(np.random.default_rng(5), "delayed")
    ids = make_cohort(tmp_path, 2, seed=1, shape=(48, 48, 16), spacing=(8.0, 8.0, 15.0),
                      phases=["arterial", "non_contrast"])
    got = [json.loads((tmp_path / "ground_truth" / f"{i}.centerlines.json").read_text())["meta"]["variation"]["phase"]
           for i in ids]
    assert got == ["arterial", "non_contrast"]
    with pytest.raises(ValueError):
        make_cohort(tmp_path / "bad", 2, seed=1, phases=["arterial"])


def test_round_weights_are_the_average_of_the_last_iterates():
    cfg = new_bundle({"spacing": [6.0] * 3, "patch_size": [16, 16, 16], "roi_size": [16, 16, 16]}).config
    rng = np.random.default_rng(0)
    label = np.zeros((16, 16, 16), np.uint8)
    label[4:12, 4:12, 4:12] = 1
    label[6:9, 6:9, 2:5] = 4
    case = Case("c", (rng.random((16, 16, 16)) * 0.2 + 0.4 * (label > 0)).astype(np.float32), label)
    torch.manual_seed(0)
    init = new_bundle(cfg).net.state_dict()
    snapshots = []

    def keep(it: int, _loss: float) -> bool:
        if it > 3:  # iterations 4..6 of 6 = the last half
            snapshots.append({k: v.detach().clone() for k, v in reference.state_dict().items()})
        return False

    reference = new_bundle(cfg).net
    reference.load_state_dict(init)
    torch.manual_seed(1)
    train_iterations(reference, [Case("c", case.image, case.label)], cfg, 6, torch.device("cpu"), seed=3, on_step=keep)
    averaged = new_bundle(cfg).net
    averaged.load_state_dict(init)
    torch.manual_seed(1)
    train_round(averaged, [Case("c", case.image, case.label)], cfg, 6, torch.device("cpu"), 1e-3, 3, average=0.5)
    assert len(snapshots) == 3
    name = next(k for k, v in init.items() if v.dtype.is_floating_point and v.numel() > 10)
    mean = torch.stack([s[name] for s in snapshots]).mean(0)
    assert torch.allclose(averaged.state_dict()[name], mean, atol=1e-6)
    assert not torch.allclose(averaged.state_dict()[name], snapshots[-1][name])


def test_diverse_picks_of_a_round_are_not_near_duplicates_of_each_other():
    """Picked one after another like the server strategy: the second pick is measured against the first."""
    bundle = new_bundle({"spacing": [6.0] * 3, "patch_size": [16, 16, 16], "roi_size": [16, 16, 16]})
    rng = np.random.default_rng(0)
    image = (rng.random((16, 16, 16)) * 0.5).astype(np.float32)
    labelled = [Case("lab", image, np.zeros((16, 16, 16), np.uint8))]
    cand = [Case(c, image, labelled[0].label) for c in ("twin_a", "twin_b", "other", "dull")]
    scores = {"twin_a": 0.9, "twin_b": 0.89, "other": 0.5, "dull": 0.1}
    far = [30.0] + [0.0] * 11  # far from the labelled image in body volume
    features = {"twin_a": far, "twin_b": far, "other": [-30.0] + [0.0] * 11, "dull": [60.0] + [0.0] * 11}
    picks, details = pick_diverse(bundle.net, cand, labelled, scores, features, bundle.config, torch.device("cpu"), 2)
    assert [c.case_id for c in picks] == ["twin_a", "other"]  # twin_b would duplicate twin_a
    assert [d["rank"] for d in details] == [1, 2] and all(d["distance"] > 0 for d in details)
