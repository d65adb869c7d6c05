"""Implementation of ``medseg bench learning`` (imported on use: it loads torch): does active learning reach a given Dice with fewer labelled cases?

Simulates an annotation team on a synthetic cohort whose cases differ the way real ones do
(contrast phase, dose, body size, field of view: ``synth.variation``). The cohort is split once
into held-out test cases and a pool; the default ``skewed`` scenario is a clinical pool dominated
by portal-venous scans with a test set balanced over the phases (``random``: a random split).
For every seed and strategy (``random`` = the baseline, and the uncertainty strategies),
starting from the same model, rounds of

    pick the next case(s) -> submit its ground truth as the correction -> fine-tune -> test Dice

use the same training code as the server (``training.seg_loop``) and the same uncertainty code
(``models.predict``). Design choices (see ``learning_design`` in the result JSON):

- start model: the shipped starter weights (what a site starts from) or a model trained from
  scratch on ``--initial`` pool cases, on a coarse grid (6 mm) where it reaches a plateau on a CPU;
- each round's model is its weights averaged over the last part of the round (less noise than the
  last weights); the metric is Dice over the classes the learner can learn (``--classes``);
- uncertainty is scored over the whole pool (or ``--candidates`` of it) with the server's code;
- warm start: each round fine-tunes the previous round's model for a fixed number of iterations
  (what the server's fine-tuning does; the cost per round is constant and equal for all strategies);
- determinism: torch and numpy are seeded per (seed, round); a seed fixes the random order, the
  initial cases, the candidate subsets and the training randomness, and every strategy of a seed
  starts from the same model (paired comparison);
- the curves are averaged over the seeds (mean +- std); "cases to reach random's final Dice" is
  read off the mean curves by linear interpolation, and per seed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..activelearning.class_scores import CLASS_SCORES
from ..activelearning.diversity import describe, diverse_pick
from ..atomic import atomic_write, atomic_write_bytes
from ..models.bundle import load_bundle, new_bundle
from ..models.predict import entropy_map, mc_dropout_samples, predict_probs, tta_samples, uncertainty_score
from ..synth.variation import PHASES
from ..training.seg_loop import Case, Timer, evaluate, load_case, train_iterations

STRATEGIES = ("random", "mc_dropout", "tta", "mc_dropout_diverse", *CLASS_SCORES)
STARTER = Path(__file__).resolve().parents[1] / "models" / "weights" / "auto_seg"


# ----------------------------------------------------------------------------------------- cohort

SCENARIOS = {
    "skewed": "clinical pool dominated by the routine protocol (mostly portal venous) with few arterial and "
              "non-contrast scans; held-out test set balanced over the phases, because the model must work on "
              "every phase the hospital acquires",
    "random": "test cases drawn at random from one cohort; the pool has the cohort's phase mix",
}


def _phase_counts(ids: list[str], meta: dict[str, dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for cid in ids:
        ph = meta.get(cid, {}).get("phase", "?")
        out[ph] = out.get(ph, 0) + 1
    return out


def scenario_phases(test_per_phase: int, pool_mix: dict[str, int], seed: int) -> list[str]:
    """Contrast phase of each case of a ``skewed`` cohort, in a seeded random order: ``test_per_phase``
    cases of every phase (the balanced test set) plus the pool's ``{phase: count}``."""
    phases = [ph for ph in PHASES for _ in range(test_per_phase)]
    phases += [ph for ph, n in pool_mix.items() for _ in range(n)]
    return [phases[i] for i in np.random.default_rng(seed).permutation(len(phases))]


def cohort_cases(folder: Path, make: int, seed: int, varied: bool = True,
                 phases: list[str] | None = None) -> list[str]:
    """Case ids of a cohort folder (``<id>.nii.gz`` + ``ground_truth/<id>.label.nii.gz``); generates
    ``make`` small phantoms there first (with acquisition/patient variation when ``varied``; with the
    given contrast ``phases`` when set) when it holds none."""
    folder.mkdir(parents=True, exist_ok=True)
    gt = folder / "ground_truth"
    ids = sorted(p.name[: -len(".label.nii.gz")] for p in gt.glob("*.label.nii.gz")
                 if (folder / p.name.replace(".label", "")).exists()) if gt.exists() else []
    if not ids:
        from ..synth import make_cohort

        make = len(phases) if phases is not None else make
        print(f"generating {make} {'varied' if varied else 'standard'} phantoms in {folder} ...", flush=True)
        ids = make_cohort(folder, make, seed, shape=(128, 128, 48), spacing=(3.0, 3.0, 5.0), varied=varied,
                          phases=phases)
    return ids


def case_meta(folder: Path, case_id: str) -> dict[str, Any]:
    """Phantom metadata (phase, noise, ...) of a case, empty when the cohort has none."""
    try:
        meta = json.loads((folder / "ground_truth" / f"{case_id}.centerlines.json").read_text()).get("meta", {})
    except (OSError, ValueError):
        return {}
    var = meta.get("variation") or {}
    return {"phase": var.get("phase", "portal_venous"), "noise_std_hu": meta.get("noise_std_hu"),
            "body_scale": var.get("body_scale", 1.0), "n_tumours": meta.get("n_tumours")}


def split_cohort(args: argparse.Namespace, ids: list[str], meta: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(test ids, pool ids). ``skewed``: the first ``test_per_phase`` cases of every phase are the test
    set (balanced over phases), the rest is the pool. ``random``: a seeded random ``test`` cases."""
    if args.scenario == "skewed":
        test = []
        for ph in PHASES:
            mine = [c for c in ids if meta[c].get("phase") == ph]
            if len(mine) < args.test_per_phase:
                raise ValueError(f"cohort {args.cohort} has {len(mine)} {ph} cases; the skewed scenario needs "
                                 f">= {args.test_per_phase} (use an empty folder to generate one)")
            test += mine[: args.test_per_phase]
        return sorted(test), [c for c in ids if c not in test]
    order = np.random.default_rng(args.cohort_seed).permutation(len(ids))
    return [ids[i] for i in order[: args.test]], [ids[i] for i in order[args.test:]]


def network_config(args: argparse.Namespace) -> dict[str, Any]:
    """Bundle configuration of a from-scratch model: network, grid spacing, training patch, window."""
    return {"network": args.network, "spacing": [args.spacing] * 3, "patch_size": list(args.patch),
            "roi_size": [max(p, 64) for p in args.patch[:1]] + [max(p, 96) for p in args.patch[1:]]}


# ------------------------------------------------------------------------------------- simulation

def train_round(net: torch.nn.Module, cases: list[Case], cfg: dict[str, Any], iterations: int, device: torch.device,
                lr: float, seed: int, average: float) -> None:
    """Train ``net`` in place (``training.seg_loop.train_iterations``); with ``average`` > 0 the weights
    are then replaced by their mean over the last ``average`` fraction of the iterations (stochastic
    weight averaging), which removes most of the step-to-step noise of the last weights."""
    if average <= 0:
        train_iterations(net, cases, cfg, iterations, device, lr=lr, seed=seed)
        return
    swa = torch.optim.swa_utils.AveragedModel(net)
    start = int(iterations * (1.0 - average))

    def collect(it: int, _loss: float) -> bool:
        if it > start:
            swa.update_parameters(net)
        return False

    train_iterations(net, cases, cfg, iterations, device, lr=lr, seed=seed, on_step=collect)
    net.load_state_dict(swa.module.state_dict())
    net.eval()


def test_dice(net: torch.nn.Module, test: list[Case], cfg: dict[str, Any], device: torch.device,
              classes: list[str], meta: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Test Dice of ``net`` over ``classes`` (see :func:`aggregate_dice`)."""
    per_case = {}
    for case in test:
        pc = evaluate(net, [case], cfg, device)["per_class"]
        per_case[case.case_id] = {k: v for k, v in pc.items() if v is not None}
    return aggregate_dice(per_case, classes, meta)


def aggregate_dice(per_case: dict[str, dict[str, float]], classes: list[str],
                   meta: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """From per-case, per-class Dice (MONAI DiceMetric; classes absent from a case left out): each case's
    mean over the ``classes`` it has, the mean of that over the cases (``dice``), per contrast phase, and
    every class's mean over the cases that have it."""
    scores = {cid: float(np.mean([pc[k] for k in classes if k in pc])) for cid, pc in per_case.items()
              if any(k in pc for k in classes)}
    if not scores:
        raise ValueError(f"no test case has any of the classes {classes}")
    names = sorted({k for pc in per_case.values() for k in pc})
    per_class = {k: float(np.mean([pc[k] for pc in per_case.values() if k in pc])) for k in names}
    phases: dict[str, list[float]] = {}
    for cid, v in scores.items():
        phases.setdefault(meta.get(cid, {}).get("phase", "?"), []).append(v)
    return {"dice": float(np.mean(list(scores.values()))), "per_class": per_class,
            "per_phase": {k: float(np.mean(v)) for k, v in sorted(phases.items())},
            "per_case": {k: round(v, 4) for k, v in scores.items()}}


def score_pool(net: torch.nn.Module, pool: list[Case], cfg: dict[str, Any], method: str, samples: int,
               device: torch.device, features: dict[str, list[float]] | None = None,
               classes: list[int] | None = None) -> dict[str, float]:
    """Uncertainty score of each pool case under ``net`` (``method``: mc_dropout or tta; a ``*_diverse``
    strategy scores with its base method; a class-balanced one (``CLASS_SCORES``) over ``classes``);
    each case's descriptor goes into ``features`` when given."""
    out = {}
    for case in pool:
        if method.startswith("mc_dropout"):
            probs = mc_dropout_samples(net, case.image, cfg, device, samples)
        else:
            probs = tta_samples(net, case.image, cfg, device, samples)
        scorer = CLASS_SCORES.get(method)
        entropy = entropy_map(probs)
        out[case.case_id] = scorer(probs, entropy, classes) if scorer else uncertainty_score(probs, entropy)
        if features is not None:
            features[case.case_id] = describe(case.image, np.mean(probs, axis=0), cfg["spacing"])
    return out


def pick_diverse(net: torch.nn.Module, cand: list[Case], labelled: list[Case], scores: dict[str, float],
                 features: dict[str, list[float]], cfg: dict[str, Any], device: torch.device,
                 count: int) -> tuple[list[Case], list[dict[str, Any]]]:
    """``count`` picks one after another as the server's ``mc_dropout_diverse`` strategy makes them: each
    pick is measured against the labelled cases (described under ``net``) and the picks before it."""
    reference = [describe(c.image, predict_probs(net, c.image, cfg, device), cfg["spacing"]) for c in labelled]
    left = {c.case_id: c for c in cand}
    picks, details = [], []
    for _ in range(min(count, len(left))):
        cid, info = diverse_pick({k: scores[k] for k in left}, features, reference)
        picks.append(left.pop(cid))
        reference.append(features[cid])
        details.append({"case": cid, **info})
    return picks, details


def _seeded(seed: int, *parts: int) -> int:
    """A reproducible 31-bit seed derived from ``seed`` and ``parts``."""
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1, np.uint32)[0] >> 1)


def start_model(args: argparse.Namespace, seed: int, labelled: list[Case], device: torch.device):
    """The round-0 model of ``seed``: the starter weights, or trained from scratch on ``labelled``."""
    torch.manual_seed(_seeded(seed, 0))
    if args.start == "starter":
        return load_bundle(Path(args.starter))
    bundle = new_bundle(network_config(args))
    train_round(bundle.net, labelled, bundle.config, args.iterations_initial, device, args.lr,
                _seeded(seed, 0, 1), args.average)
    return bundle


def _load_cases(args: argparse.Namespace, cfg: dict[str, Any], ids: list[str]) -> dict[str, Case]:
    return {cid: load_case(args.cohort / f"{cid}.nii.gz", args.cohort / "ground_truth" / f"{cid}.label.nii.gz",
                           cfg, cid, cache_dir=args.cohort / ".cache") for cid in ids}


def _initial_ids(args: argparse.Namespace, seed: int, pool_ids: list[str]) -> list[str]:
    rng = np.random.default_rng(_seeded(seed, 1))
    return [pool_ids[i] for i in rng.permutation(len(pool_ids))[: args.initial]]


def initial_state(task: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Weights of the round-0 model of one seed (trained once, shared by its strategies). Worker process."""
    args, seed = task["args"], task["seed"]
    torch.set_num_threads(max(1, args.threads))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    initial = _initial_ids(args, seed, list(task["pool"]))
    cases = _load_cases(args, task["cfg"], initial)
    bundle = start_model(args, seed, [cases[c] for c in initial], device)
    return {k: v.cpu() for k, v in bundle.net.state_dict().items()}


def simulate(task: dict[str, Any]) -> dict[str, Any]:
    """One (seed, strategy) run: rounds of pick -> label -> fine-tune -> test. Runs in a worker process."""
    args, seed, strategy = task["args"], task["seed"], task["strategy"]
    torch.set_num_threads(max(1, args.threads))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cases = _load_cases(args, task["cfg"], task["test"] + task["pool"])
    test = [cases[c] for c in task["test"]]
    pool_ids = list(task["pool"])
    initial = _initial_ids(args, seed, pool_ids)
    labelled = [cases[c] for c in initial]
    pool = [cases[c] for c in pool_ids if c not in initial]
    clock = Timer()
    if args.start == "starter":
        bundle = load_bundle(Path(args.starter))
    else:
        bundle = new_bundle(network_config(args))
        bundle.net.load_state_dict(task["start_state"])
    bundle.net.to(device)
    cfg = bundle.config
    meta = task["meta"]
    metrics = test_dice(bundle.net, test, cfg, device, args.classes, meta)
    curve = [{**metrics, "labelled": len(labelled), "picked": initial, "seconds": round(clock(), 1)}]
    order = np.random.default_rng(_seeded(seed, 2))  # random strategy's order and the candidate subsets
    all_scores: list[dict[str, float]] = []
    for rnd in range(1, args.rounds + 1):
        if not pool:
            break
        clock = Timer()
        scores: dict[str, float] = {}
        pick_details: list[dict[str, Any]] | None = None
        if strategy == "random":
            picks = [pool[i] for i in order.permutation(len(pool))[: args.per_round]]
        else:
            cand = pool if not args.candidates or args.candidates >= len(pool) else \
                [pool[i] for i in sorted(order.choice(len(pool), args.candidates, replace=False))]
            torch.manual_seed(_seeded(seed, rnd, 3))
            features: dict[str, list[float]] = {}
            scores = score_pool(bundle.net, cand, cfg, strategy, args.samples, device, features,
                                [cfg["labels"][k] for k in args.classes])
            all_scores.append({c: round(v, 5) for c, v in scores.items()})
            if strategy.endswith("_diverse"):
                picks, pick_details = pick_diverse(bundle.net, cand, labelled, scores, features, cfg, device,
                                                   args.per_round)
            else:
                picks = sorted(cand, key=lambda c: scores[c.case_id], reverse=True)[: args.per_round]
        pick_s = clock()
        for case in picks:
            pool.remove(case)
            labelled.append(case)
        torch.manual_seed(_seeded(seed, rnd, 4))
        train_round(bundle.net, labelled, cfg, args.iterations_per_round, device, args.lr_finetune,
                    _seeded(seed, rnd, 5), args.average)
        metrics = test_dice(bundle.net, test, cfg, device, args.classes, meta)
        curve.append({**metrics, "labelled": len(labelled), "picked": [c.case_id for c in picks],
                      "scores": {c.case_id: round(scores[c.case_id], 5) for c in picks} if scores else None,
                      "pick_details": pick_details, "pick_seconds": round(pick_s, 1), "seconds": round(clock(), 1)})
        print(f"  seed {seed} {strategy:>10} round {rnd}: {len(labelled):2d} labelled, test Dice {metrics['dice']:.4f} "
              f"(picked {', '.join(c.case_id for c in picks)}; {clock():.0f} s)", flush=True)
    return {"seed": seed, "strategy": strategy, "curve": curve, "pool_scores": all_scores}


# ---------------------------------------------------------------------------------------- metrics

def cases_to_reach(xs: list[float], ys: list[float], target: float) -> float | None:
    """Labelled cases at which the curve ``(xs, ys)`` first reaches ``target``, linearly interpolated
    between the two points around the crossing (None if it never does)."""
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if y >= target:
            if i == 0:
                return float(x)
            x0, y0 = xs[i - 1], ys[i - 1]
            return float(x0 + (x - x0) * (target - y0) / (y - y0))
    return None


def monotonic_within(ys: list[float], tolerance: list[float] | float) -> bool:
    """True when no point falls below the best value before it by more than its tolerance."""
    tol = [tolerance] * len(ys) if isinstance(tolerance, int | float) else list(tolerance)
    best = -np.inf
    for y, t in zip(ys, tol, strict=True):
        if y < best - t:
            return False
        best = max(best, y)
    return True


def mean_curves(runs: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Per strategy: labelled counts, mean, std and standard error of test Dice over the seeds."""
    out: dict[str, dict[str, list[float]]] = {}
    for name in dict.fromkeys(r["strategy"] for r in runs):
        curves = [r["curve"] for r in runs if r["strategy"] == name]
        n = min(len(c) for c in curves)
        table = np.array([[p["dice"] for p in c[:n]] for c in curves], float)
        sd = table.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(n)
        out[name] = {"labelled": [float(p["labelled"]) for p in curves[0][:n]], "mean": table.mean(axis=0).tolist(),
                     "std": sd.tolist(), "sem": (sd / np.sqrt(len(curves))).tolist(), "seeds": len(curves)}
    return out


def summarise(runs: list[dict[str, Any]], noise_floor: float) -> dict[str, Any]:
    """Label savings against ``random`` at random's final mean Dice (mean curves and per seed), monotonicity."""
    curves = mean_curves(runs)
    base = curves["random"]
    target, n_random = base["mean"][-1], base["labelled"][-1]
    n_start = base["labelled"][0]
    out: dict[str, Any] = {"random_final_dice": target, "random_final_std": base["std"][-1], "random_cases": n_random,
                           "curves": curves, "strategies": {}}
    seeds = sorted({r["seed"] for r in runs})
    random_learned = target > base["mean"][0] + max(noise_floor, 2 * base["sem"][-1])
    out["random_improved_beyond_noise"] = bool(random_learned)
    by = {(r["seed"], r["strategy"]): r["curve"] for r in runs}
    for name, c in curves.items():
        n = cases_to_reach(c["labelled"], c["mean"], target)
        saving = None if n is None else round(1.0 - n / n_random, 4)
        per_seed = []
        for s in seeds:
            if (s, name) in by and (s, "random") in by:
                mine, rand = by[(s, name)], by[(s, "random")]
                ns = cases_to_reach([p["labelled"] for p in mine], [p["dice"] for p in mine], rand[-1]["dice"])
                per_seed.append(None if ns is None else round(1.0 - ns / rand[-1]["labelled"], 4))
        tol = [max(noise_floor, 2 * e) for e in c["sem"]]
        gains = [float(np.mean([p["dice"] - q["dice"] for p, q in zip(by[(s, name)][1:], by[(s, "random")][1:],
                                                                      strict=False)]))
                 for s in seeds if (s, name) in by and (s, "random") in by and len(by[(s, name)]) > 1]
        out["strategies"][name] = {
            "final_dice": c["mean"][-1], "final_std": c["std"][-1],
            "cases_to_reach_random_final": None if n is None else round(n, 2),
            "label_saving": saving,
            "label_saving_counting_only_new_labels": None if n is None or n_random == n_start else
            round(1.0 - (n - n_start) / (n_random - n_start), 4),
            "label_saving_per_seed": per_seed,
            "meets_20pct_target": bool(saving is not None and saving >= 0.2 and random_learned)
            if name != "random" else None,
            "paired_gain_vs_random": None if name == "random" or not gains else {
                "mean": float(np.mean(gains)), "sem": float(np.std(gains, ddof=1) / np.sqrt(len(gains)))
                if len(gains) > 1 else None, "per_seed": [round(g, 4) for g in gains]},
            "monotonic_within_noise": monotonic_within(c["mean"], tol),
            "monotonic_tolerance": [round(t, 4) for t in tol],
            "seeds_monotonic_within_floor": sum(monotonic_within([p["dice"] for p in by[(s, name)]], noise_floor)
                                                for s in seeds if (s, name) in by),
            "mean_dice_over_rounds": float(np.mean(c["mean"][1:])) if len(c["mean"]) > 1 else None,
        }
    return out


def picks_by_phase(runs: list[dict[str, Any]], meta: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """How many picked cases of each contrast phase every strategy labelled (all seeds together)."""
    out: dict[str, dict[str, int]] = {}
    for r in runs:
        counts = out.setdefault(r["strategy"], {})
        for p in r["curve"][1:]:
            for cid in p["picked"]:
                ph = meta.get(cid, {}).get("phase", "?")
                counts[ph] = counts.get(ph, 0) + 1
    return out


# ---------------------------------------------------------------------------------------- outputs

def plot(summary: dict[str, Any], path: Path, title: str, ylabel: str = "mean test Dice") -> None:
    """Mean learning curves (test Dice vs labelled cases) with +-1 std bands, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=100)
    for name, c in summary["curves"].items():
        xs, m, sd = np.array(c["labelled"]), np.array(c["mean"]), np.array(c["std"])
        line, = ax.plot(xs, m, marker="o", label=f"{name} (n={c['seeds']})", linestyle="--" if name == "random" else "-")
        ax.fill_between(xs, m - sd, m + sd, color=line.get_color(), alpha=0.15)
        reach = summary["strategies"][name]["cases_to_reach_random_final"]
        if name != "random" and reach is not None:
            ax.axvline(reach, color=line.get_color(), linestyle=":", linewidth=1)
    ax.axhline(summary["random_final_dice"], color="grey", linewidth=0.8, linestyle=":", label="random's final Dice")
    ax.set_xlabel("labelled cases")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"), suffix=".png")
    plt.close(fig)


def plot_title(result: dict[str, Any]) -> str:
    """Title of the learning-curve plot: scenario, cohort, seeds."""
    st = result["settings"]
    return (f"Active learning, {st['scenario']} scenario: {result['cases']} phantoms "
            f"({len(result['split']['test'])} test), {len(st['seeds'])} seeds, mean +- std")


def report_lines(result: dict[str, Any]) -> list[str]:
    """The human-readable summary printed at the end and written as RESULT.md."""
    s, st = result["summary"], result["settings"]
    design = result["learning_design"]
    lines = [f"# medseg bench learning ({result['created']})", "",
             f"Scenario `{st['scenario']}`: {design['scenario']}. Cohort: {result['cases']} phantoms; "
             f"{len(result['split']['test'])} held-out test cases (phases {result['test_phases']}), pool "
             f"{len(result['split']['pool'])} (phases {result['pool_phases']}); start model: {st['start']}; "
             f"model: {design['model']}; {st['rounds']} rounds x {st['per_round']} "
             f"case(s), {st['iterations_per_round']} fine-tuning iterations per round (warm start), "
             f"{design['averaging']}; {len(st['seeds'])} seeds {st['seeds']}; uncertainty: {design['uncertainty']}; "
             f"metric: {design['metric']}; {result['seconds']:.0f} s, load average {result['load_average']}.", "",
             "Mean test Dice (+- std over seeds) by labelled cases:", ""]
    for name, c in s["curves"].items():
        lines.append(f"- {name}: " + "  ".join(f"{x:g}: {m:.3f}+-{d:.3f}" for x, m, d in
                                               zip(c["labelled"], c["mean"], c["std"], strict=True)))
    lines += ["", f"Random's final mean Dice: {s['random_final_dice']:.4f} +- {s['random_final_std']:.4f} "
              f"with {s['random_cases']:g} labelled cases"
              + ("." if s["random_improved_beyond_noise"] else
                 " -- NOT above its start beyond noise, so 'cases to reach it' says nothing about labelling."), ""]
    for name, v in s["strategies"].items():
        mono = f"monotonic within noise (2 SEM, floor {st['noise']}): {v['monotonic_within_noise']}; " \
               f"seeds monotonic within {st['noise']}: {v['seeds_monotonic_within_floor']}/{len(st['seeds'])}"
        if name == "random":
            lines.append(f"- random: final {v['final_dice']:.4f}; {mono}")
            continue
        reach = "never reached" if v["cases_to_reach_random_final"] is None else \
            f"{v['cases_to_reach_random_final']:g} cases ({100 * v['label_saving']:.0f} % fewer)"
        per_seed = ", ".join("never" if x is None else f"{100 * x:.0f} %" for x in v["label_saving_per_seed"])
        g = v["paired_gain_vs_random"]
        if g:
            per_seed += (f"; paired Dice gain over random, mean over rounds: {g['mean']:+.4f}"
                         + (f" +- {g['sem']:.4f} (SEM over seeds)" if g["sem"] is not None else ""))
        lines.append(f"- {name}: reaches random's final Dice with {reach}; per seed: {per_seed}; final "
                     f"{v['final_dice']:.4f} +- {v['final_std']:.4f}; target >= 20 % fewer: "
                     f"{'MET' if v['meets_20pct_target'] else 'NOT met'}; {mono}")
    lines += ["", "Cases picked per contrast phase (all seeds): " + "; ".join(
        f"{k} {v}" for k, v in result["picked_by_phase"].items())]
    lines += ["", "Final test Dice per phase and per class (mean over seeds):", ""]
    for name, v in final_breakdown(result["runs"]).items():
        lines.append(f"- {name}: phases " + ", ".join(f"{k} {x:.3f}" for k, x in v["per_phase"].items())
                     + "; classes " + ", ".join(f"{k} {x:.3f}" for k, x in v["per_class"].items()))
    return lines


def final_breakdown(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per strategy: the last round's test Dice per phase and per class, averaged over the seeds."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in dict.fromkeys(r["strategy"] for r in runs):
        last = [r["curve"][-1] for r in runs if r["strategy"] == name]
        out[name] = {key: {k: float(np.mean([p[key][k] for p in last if k in p.get(key, {})]))
                           for k in sorted({k for p in last for k in p.get(key, {})})}
                     for key in ("per_phase", "per_class")}
    return out


# ------------------------------------------------------------------------------------------ main

def run(args: argparse.Namespace) -> int:
    total = Timer()
    phases_wanted = scenario_phases(args.test_per_phase, dict(zip(PHASES, args.pool_phases, strict=True)),
                                    args.cohort_seed) if args.scenario == "skewed" else None
    ids = cohort_cases(args.cohort, args.make, args.cohort_seed, args.varied, phases_wanted)
    meta = {cid: case_meta(args.cohort, cid) for cid in ids}
    test_ids, pool_ids = split_cohort(args, ids, meta)
    need = args.initial + args.rounds * args.per_round
    if len(pool_ids) < need:
        raise ValueError(f"pool has {len(pool_ids)} cases; need initial + rounds x per-round = {need}")
    cfg = load_bundle(Path(args.starter)).config if args.start == "starter" else new_bundle(
        network_config(args)).config
    for cid in ids:  # bring every case to the network grid once (cached) before the workers start
        load_case(args.cohort / f"{cid}.nii.gz", args.cohort / "ground_truth" / f"{cid}.label.nii.gz", cfg, cid,
                  cache_dir=args.cohort / ".cache")
    phases = _phase_counts(ids, meta)
    print(f"{len(test_ids)} test, {len(pool_ids)} pool cases (phases {phases}); start {args.start}; seeds "
          f"{args.seeds}; strategies {args.strategies}; {args.jobs} worker(s)", flush=True)
    slim = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "func"})
    base = {"args": slim, "cfg": cfg, "test": test_ids, "pool": pool_ids, "meta": meta}
    tasks = [{**base, "seed": s, "strategy": st}
             for st in sorted(args.strategies, key=lambda x: x == "random") for s in args.seeds]
    ex = ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) if args.jobs > 1 else None
    mapper = ex.map if ex is not None else map
    try:
        if args.start == "scratch":
            clock = Timer()
            states = dict(zip(args.seeds, mapper(initial_state, [{**base, "seed": s} for s in args.seeds]),
                              strict=True))
            print(f"start models trained ({args.initial} cases, {args.iterations_initial} iterations, "
                  f"{clock():.0f} s)", flush=True)
            for t in tasks:
                t["start_state"] = states[t["seed"]]
        runs = list(mapper(simulate, tasks))
    finally:
        if ex is not None:
            ex.shutdown()
    runs.sort(key=lambda r: (STRATEGIES.index(r["strategy"]), r["seed"]))
    summary = summarise(runs, args.noise)
    png = args.plot or args.out.with_suffix(".png")
    result = {
        "benchmark": "learning", "cohort": str(args.cohort), "cases": len(ids), "phases": phases,
        "test_phases": _phase_counts(test_ids, meta), "pool_phases": _phase_counts(pool_ids, meta),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"},
        "learning_design": {
            "start": "starter weights (what a site starts from)" if args.start == "starter" else
            f"trained from scratch on {args.initial} random pool cases per seed",
            "rounds": "warm start: fine-tune the previous round's model, fixed iterations per round (like the "
                      "server's fine-tuning; equal compute for every strategy)",
            "pairing": "every strategy of a seed starts from the same model; a seed fixes the random order, "
                       "candidate subsets and training randomness",
            "scenario": SCENARIOS[args.scenario],
            "model": f"{args.network} on a {args.spacing:g} mm grid, patches {args.patch}, trained on all classes",
            "averaging": f"weights averaged over the last {100 * args.average:.0f} % of the iterations of every "
                         "round (stochastic weight averaging)" if args.average > 0 else "last weights",
            "uncertainty": f"{args.samples} samples per case on {'the whole pool' if not args.candidates else f'{args.candidates} random pool cases'} "
                           "per round, with the server's scoring code (models.predict)",
            "diversity": "mc_dropout_diverse: among the most uncertain third of the pool, the case farthest from "
                         "its nearest labelled (or already picked) case in standardised descriptors (body volume, "
                         "body intensity, predicted volume and intensity per class), picked one after another "
                         "like the server's strategy (activelearning.diversity)",
            "class_scores": f"mc_dropout_classes / mc_dropout_dice: per class over {', '.join(args.classes)} (the "
                            "metric's classes), the mean entropy / 1 - mean pairwise soft Dice of the MC samples "
                            "inside the region any sample gives that class, then the mean over the classes "
                            "(activelearning.class_scores)",
            "metric": f"Dice over {', '.join(args.classes)} (MONAI DiceMetric per test case, mean over the classes "
                      "present, then over the held-out test cases)",
        },
        "split": {"test": test_ids, "pool": pool_ids}, "case_meta": meta, "runs": runs, "summary": summary,
        "picked_by_phase": picks_by_phase(runs, meta), "plot": str(png), "seconds": round(total(), 1),
        "load_average": [round(x, 2) for x in os.getloadavg()], "device": "cuda" if torch.cuda.is_available() else "cpu",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    plot(summary, png, plot_title(result), f"mean test Dice ({', '.join(args.classes)})")
    atomic_write_bytes(args.out, json.dumps(result, indent=1, default=float).encode())
    lines = report_lines(result)
    md = args.out.with_suffix(".md")
    atomic_write_bytes(md, ("\n".join(lines + ["", f"![learning curves]({png.name})", ""])).encode())
    print("\n" + "\n".join(lines[2:]))
    print(f"\nwrote {args.out}, {md} and {png} ({total():.0f} s)")
    return 0


def checked_run(args: argparse.Namespace) -> int:
    """Validate the strategy list, then run the simulation."""
    bad = [s for s in args.strategies if s not in STRATEGIES]
    if bad or "random" not in args.strategies:
        raise ValueError(f"strategies must include 'random' and come from {', '.join(STRATEGIES)} (got {bad})")
    if args.start == "scratch" and args.initial < 1:
        raise ValueError("--start scratch needs --initial >= 1")
    if not args.seeds:
        raise ValueError("--seeds must name at least one seed")
    if args.starter is None:
        args.starter = STARTER
    return run(args)
