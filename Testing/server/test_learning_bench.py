"""Tests of the figures of ``medseg bench learning`` (curve averaging, interpolated label savings, monotonicity)."""

from __future__ import annotations

import pytest

from medseg_server.bench._learning_impl import cases_to_reach, monotonic_within, summarise


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
