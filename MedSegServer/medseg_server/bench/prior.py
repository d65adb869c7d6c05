"""``medseg bench prior``: does starting from the learned model help the interactive engine?

Same cases, classes and click protocol as ``bench interactive``; every class is run twice in the
same process: the image-driven engine alone (the baseline) and the engine with the published
``auto_seg`` model as the prior of the first click (:mod:`..interactive.model_prior`). Prints
Dice@1/5/10, NoC@85/90 of both, the model's time per image, and which classes the model was
trusted for. Use phantom seeds the starter weights never saw (they were trained on seed 2024 and
validated on 2025; the default here is 100).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..atomic import atomic_write_bytes
from ..interactive.model_prior import MIN_DICE, auto_seg_prior
from .interactive import _cases, _resize, add_case_arguments, run_engine, summarise


def register_bench(sub: argparse._SubParsersAction) -> None:
    """Add ``bench prior``."""
    p = sub.add_parser("prior", help="interactive engine with vs without the learned model as prior")
    add_case_arguments(p, default_seed=100)  # phantom seeds the starter weights never saw
    p.add_argument("--model-store", type=Path, help="auto_seg version store (default: the starter weights)")
    p.add_argument("--min-dice", type=float, default=MIN_DICE, help="validation Dice a class needs to be trusted")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the model")
    p.add_argument("--out", type=Path, required=True, help="result JSON")
    p.set_defaults(func=run)


def bench_all(out_dir: Path) -> int:
    """Default run for ``medseg bench all``: two held-out phantoms, liver, IVC and portal vein."""
    parser = argparse.ArgumentParser()
    register_bench(parser.add_subparsers())
    return run(parser.parse_args(["prior", "--synthetic", "2", "--classes", "liver=1,ivc=4,portal_vein=2",
                                  "--out", str(out_dir / "prior_synthetic.json")]))


def run(args: argparse.Namespace) -> int:
    """Run both variants on every case and class; print the comparison; write the JSON."""
    import torch

    from ..models.auto_seg import AutoSegModel

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = AutoSegModel(args.model_store or Path(tmp) / "auto_seg")
        bundle, version = model.bundle()
        factory = auto_seg_prior(model, args.min_dice)
        results: dict[str, Any] = {"model_version": version, "min_dice": args.min_dice, "clicks": args.clicks,
                                   "card_dice": bundle.card.get("validation_dice_per_class"), "cases": []}
        for case_id, image, label, classes in _cases(args):
            if args.resize:
                image, label = _resize(image, label, [int(v) for v in args.resize.split(",")])
            results["cases"].append(_run_case(case_id, image, label, classes, factory, args))
    atomic_write_bytes(args.out, json.dumps(results, indent=1).encode())
    return 0


def _run_case(case_id: str, image: sitk.Image, label: sitk.Image, classes: dict[str, int], factory,
              args: argparse.Namespace) -> dict[str, Any]:
    lab = sitk.GetArrayViewFromImage(label)
    t0 = time.perf_counter()
    prior = factory(image)
    if prior is not None:
        prior.wait()
    case: dict[str, Any] = {"case": case_id, "size": list(image.GetSize()), "classes": {},
                            "prior": prior.as_json() if prior is not None else None,
                            "prior_wall_s": round(time.perf_counter() - t0, 3)}
    print(f"{case_id}: model prior {case['prior']}")
    for name, value in classes.items():
        gt = lab == value
        if not gt.any():
            continue
        plain = summarise(run_engine(image, gt, name, args.clicks, args.box), args.clicks)
        cached = _reuse(prior)
        with_model = summarise(run_engine(image, gt, name, args.clicks, args.box, cached), args.clicks)
        case["classes"][name] = {"engine": plain, "engine_with_model": with_model, "gt_voxels": int(gt.sum()),
                                 "trusted": prior is not None and name in prior.trusted}
        _print_row(case_id, name, plain, with_model)
    return case


def _reuse(prior):
    """A prior factory answering an already computed prior (the model runs once per image)."""
    return (lambda image: prior) if prior is not None else None


def _print_row(case_id: str, name: str, plain: dict[str, Any], model: dict[str, Any]) -> None:
    def fig(s: dict[str, Any]) -> str:
        d = s["dice_at"]
        return (f"Dice@1/5/10 {d.get('1', np.nan):.3f}/{d.get('5', np.nan):.3f}/{d.get('10', np.nan):.3f} "
                f"NoC85 {s['noc85']} NoC90 {s['noc90']} p50 {s['latency_p50_s']:.3f}s")

    print(f"{case_id:>14} {name:<14} alone: {fig(plain)}")
    print(f"{'':>14} {'':<14} model: {fig(model)}")
