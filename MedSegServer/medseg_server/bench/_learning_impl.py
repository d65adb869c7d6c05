"""Implementation of ``medseg bench learning`` (imported on use: it loads torch): does active learning reach a given Dice with fewer labelled cases?

Simulates an annotation team on a synthetic cohort. The cases are split once into held-out test
cases and a pool; a model is trained from scratch on a few initial cases; then, for each strategy
(``random`` = the baseline, and uncertainty strategies), rounds of

    pick the next case(s) -> submit its ground truth as the correction -> fine-tune -> test Dice

use the same training code as the server (``training.seg_loop``) and the same uncertainty code
(``activelearning.uncertainty``). Prints the learning curves, writes RESULT.json and a PNG plot.
Target: uncertainty reaches random's final Dice with >= 20 % fewer labelled cases.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write, atomic_write_bytes
from ..models.bundle import new_bundle
from ..models.predict import entropy_map, mc_dropout_samples, tta_samples, uncertainty_score
from ..training.seg_loop import Case, Timer, evaluate, load_case, train_iterations

STRATEGIES = ("random", "mc_dropout", "tta")


def cohort_cases(folder: Path, make: int, seed: int) -> list[str]:
    """Case ids of a cohort folder (``<id>.nii.gz`` + ``ground_truth/<id>.label.nii.gz``); generates
    ``make`` small phantoms there first when it holds none."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = sorted(p.name[: -len(".label.nii.gz")] for p in (folder / "ground_truth").glob("*.label.nii.gz")
                 if (folder / p.name.replace(".label", "")).exists()) if (folder / "ground_truth").exists() else []
    if not ids:
        from ..synth import make_cohort

        print(f"generating {make} phantoms in {folder} ...", flush=True)
        ids = make_cohort(folder, make, seed, shape=(128, 128, 48), spacing=(3.0, 3.0, 5.0))
    return ids


def score_pool(net: torch.nn.Module, pool: list[Case], cfg: dict[str, Any], method: str, samples: int,
               device: torch.device) -> dict[str, float]:
    """Uncertainty score of each pool case under ``net``."""
    out = {}
    for case in pool:
        if method == "mc_dropout":
            probs = mc_dropout_samples(net, case.image, cfg, device, samples)
        else:
            probs = tta_samples(net, case.image, cfg, device, samples)
        out[case.case_id] = uncertainty_score(probs, entropy_map(probs))
    return out


def simulate(strategy: str, start_state: dict, cfg: dict[str, Any], labelled: list[Case], pool: list[Case],
             test: list[Case], args: argparse.Namespace, device: torch.device, start_eval: dict) -> dict[str, Any]:
    """Rounds of pick -> label -> fine-tune -> test for one strategy, from the shared start model."""
    bundle = new_bundle(cfg)
    bundle.net.load_state_dict(copy.deepcopy(start_state))
    labelled, pool = list(labelled), list(pool)
    rng = np.random.default_rng(args.seed + 17)
    curve = [{"labelled": len(labelled), "dice": start_eval["dice"], "per_class": start_eval["per_class"],
              "picked": [c.case_id for c in labelled], "seconds": 0.0}]
    for rnd in range(args.rounds):
        if not pool:
            break
        clock = Timer()
        if strategy == "random":
            order = list(rng.permutation(len(pool)))
            picks, scores = [pool[i] for i in order[: args.per_round]], {}
        else:
            scores = score_pool(bundle.net, pool, cfg, strategy, args.samples, device)
            ranked = sorted(pool, key=lambda c: scores[c.case_id], reverse=True)
            picks = ranked[: args.per_round]
        pick_s = clock()
        for case in picks:
            pool.remove(case)
            labelled.append(case)
        train_iterations(bundle.net, labelled, cfg, args.iterations_per_round, device, lr=args.lr_finetune,
                         seed=args.seed + rnd + 1)
        metrics = evaluate(bundle.net, test, cfg, device)
        curve.append({"labelled": len(labelled), "dice": metrics["dice"], "per_class": metrics["per_class"],
                      "picked": [c.case_id for c in picks],
                      "scores": {c.case_id: round(scores[c.case_id], 5) for c in picks} if scores else None,
                      "pick_seconds": round(pick_s, 1), "seconds": round(clock(), 1)})
        print(f"  {strategy:>10} round {rnd + 1}: {len(labelled):2d} labelled, test Dice {metrics['dice']:.4f} "
              f"(picked {', '.join(c.case_id for c in picks)}; {clock():.0f} s)", flush=True)
    return {"strategy": strategy, "curve": curve}


def cases_to_reach(curve: list[dict[str, Any]], target: float) -> int | None:
    """Labelled cases at which ``curve`` first reaches ``target`` Dice (None if never)."""
    for point in curve:
        if point["dice"] >= target:
            return point["labelled"]
    return None


def monotonic_within(curve: list[dict[str, Any]], noise: float) -> bool:
    """True when no point falls more than ``noise`` below the best Dice seen before it."""
    best = -1.0
    for point in curve:
        if point["dice"] < best - noise:
            return False
        best = max(best, point["dice"])
    return True


def summarise(runs: dict[str, dict[str, Any]], noise: float) -> dict[str, Any]:
    """Savings in labelled cases of each strategy against ``random`` at random's final Dice."""
    base = runs["random"]["curve"]
    target = base[-1]["dice"]
    n_random = base[-1]["labelled"]  # random's final Dice is what it had with all its labelled cases
    out: dict[str, Any] = {"random_final_dice": target, "random_cases": n_random, "strategies": {}}
    for name, run in runs.items():
        curve = run["curve"]
        n = cases_to_reach(curve, target)
        saving = None if n is None or not n_random else round(1.0 - n / n_random, 6)
        out["strategies"][name] = {
            "final_dice": curve[-1]["dice"], "cases_to_reach_random_final": n, "label_saving": saving,
            "meets_20pct_target": bool(saving is not None and saving >= 0.2) if name != "random" else None,
            "monotonic_within_noise": monotonic_within(curve, noise),
            "mean_dice_over_rounds": float(np.mean([p["dice"] for p in curve[1:]])) if len(curve) > 1 else None,
            "mean_dice_last3": float(np.mean([p["dice"] for p in curve[-3:]])),
        }
    return out


def plot(runs: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """Learning curves (test Dice vs labelled cases) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, run in runs.items():
        xs = [p["labelled"] for p in run["curve"]]
        ys = [p["dice"] for p in run["curve"]]
        ax.plot(xs, ys, marker="o", label=name, linestyle="--" if name == "random" else "-")
    ax.set_xlabel("labelled cases")
    ax.set_ylabel("mean test Dice (foreground classes)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"), suffix=".png")
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    total = Timer()
    ids = cohort_cases(args.cohort, args.make, args.seed)
    if len(ids) < args.test + args.initial + args.rounds * args.per_round:
        raise ValueError(f"cohort has {len(ids)} cases; need test + initial + rounds x per-round = "
                         f"{args.test + args.initial + args.rounds * args.per_round}")
    rng = np.random.default_rng(args.seed)
    order = [ids[i] for i in rng.permutation(len(ids))]
    test_ids, initial_ids, pool_ids = order[: args.test], order[args.test: args.test + args.initial], order[
        args.test + args.initial:]
    bundle = new_bundle({"network": args.network})
    cfg = bundle.config
    cache = args.cohort / ".cache"

    def load(cid: str) -> Case:
        return load_case(args.cohort / f"{cid}.nii.gz", args.cohort / "ground_truth" / f"{cid}.label.nii.gz", cfg,
                         cid, cache_dir=cache)

    test, initial, pool = [load(i) for i in test_ids], [load(i) for i in initial_ids], [load(i) for i in pool_ids]
    print(f"{len(test)} test, {len(initial)} initial, {len(pool)} pool cases; network {args.network}", flush=True)
    clock = Timer()
    train_iterations(bundle.net, initial, cfg, args.iterations_initial, device, lr=args.lr, seed=args.seed)
    start_eval = evaluate(bundle.net, test, cfg, device)
    print(f"initial model ({len(initial)} cases, {args.iterations_initial} iterations, {clock():.0f} s): "
          f"test Dice {start_eval['dice']:.4f}", flush=True)
    start_state = copy.deepcopy(bundle.net.state_dict())
    runs = {}
    for strategy in args.strategies:
        runs[strategy] = simulate(strategy, start_state, cfg, initial, pool, test, args, device, start_eval)
    summary = summarise(runs, args.noise)
    print("\nlearning curves (test Dice by labelled cases):")
    for name, r in runs.items():
        print(f"  {name:>10}: " + "  ".join(f"{p['labelled']}:{p['dice']:.3f}" for p in r["curve"]))
    print(f"\nrandom final Dice {summary['random_final_dice']:.4f} with {summary['random_cases']} labelled cases")
    for name, s in summary["strategies"].items():
        if name == "random":
            continue
        saving = "never reached" if s["label_saving"] is None else f"{100 * s['label_saving']:.0f} % fewer cases"
        print(f"  {name}: reaches it with {s['cases_to_reach_random_final']} cases ({saving}); "
              f"final {s['final_dice']:.4f}; target >= 20 %: {'met' if s['meets_20pct_target'] else 'NOT met'}; "
              f"monotonic within {args.noise}: {s['monotonic_within_noise']}")
    print("  mean test Dice over the rounds / over the last 3 points (less noisy than one final point): "
          + "; ".join(f"{n} {s['mean_dice_over_rounds']:.4f} / {s['mean_dice_last3']:.4f}"
                      for n, s in summary["strategies"].items() if s["mean_dice_over_rounds"] is not None))
    png = args.plot or args.out.with_suffix(".png")
    plot(runs, png, f"Active learning on {len(ids)} phantoms ({len(test)} test)")
    result = {
        "benchmark": "learning", "cohort": str(args.cohort), "settings": {k: (str(v) if isinstance(v, Path) else v)
                                                                          for k, v in vars(args).items() if k != "func"},
        "split": {"test": test_ids, "initial": initial_ids, "pool": pool_ids},
        "initial": start_eval, "runs": runs, "summary": summary, "plot": str(png),
        "seconds": round(total(), 1), "device": str(device), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    atomic_write_bytes(args.out, json.dumps(result, indent=1, default=float).encode())
    print(f"\nwrote {args.out} and {png} ({total():.0f} s)")
    return 0


def checked_run(args: argparse.Namespace) -> int:
    """Validate the strategy list, then run the simulation."""
    bad = [s for s in args.strategies if s not in STRATEGIES]
    if bad or "random" not in args.strategies:
        raise ValueError(f"strategies must include 'random' and come from {', '.join(STRATEGIES)} (got {bad})")
    return run(args)
