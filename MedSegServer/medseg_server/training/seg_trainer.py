"""``POST /train/auto_seg``: fine-tune the published network on the final labels, in a child process.

The run splits the labelled images into training and a held-out validation set (stable per image
id), measures the published model on it, fine-tunes (Dice-CE, random class-centred patches), keeps
the best validation checkpoint and returns it. Back in the server, :meth:`SegTrainer.finish` stores
it as a new version and publishes it only if its validation Dice is not worse than the published
model's on the same cases. A run that dies or is stopped changes nothing.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..models.base import ModelError
from ..models.bundle import load_bundle, new_bundle, save_bundle
from ..models.networks import NETWORKS, pick_device
from .jobs import BackgroundJob, JobContext
from .seg_loop import Timer, evaluate, load_case, split_cases, train_iterations
from .versions import VersionStore, should_publish

Listener = Callable[[dict[str, Any]], None]


def default_threads() -> int:
    """Half the cores (at least 1): torch threads beyond the free cores slow training down many times."""
    return max(1, (os.cpu_count() or 2) // 2)


def pair_id(pair: dict[str, str]) -> str:
    """Image id of a datastore train pair (labels live in ``labels/<tag>/<image>/<file>``)."""
    return str(pair.get("id") or Path(pair["label"]).parent.name)


def auto_iterations(value: Any, cases: int) -> int:
    """``"auto"``: 40 optimiser steps per labelled case, between 60 and 600 (a round stays within
    minutes on a CPU; ``max_minutes`` caps it anyway); otherwise the given number."""
    if value == "auto":
        return int(min(600, max(60, 40 * cases)))
    return int(value)


class SegTrainer(BackgroundJob):
    """Trainer of :class:`~medseg_server.models.auto_seg.AutoSegModel` with versioning and publishing."""

    description = "Fine-tune the MONAI network on final labels; publish only if validation Dice is not worse"

    def __init__(self, model_name: str, store_dir: Path, starter: Path | None, cache_dir: Path,
                 device: str = "auto") -> None:
        self.name = model_name
        self.store_dir = Path(store_dir)
        self.starter = starter
        self.cache_dir = Path(cache_dir)
        self.device = device
        self.listeners: list[Listener] = []  # run in the server after a run: (finish record) -> None
        self.model: Any = None  # the served model, reloaded after publishing (server process only)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["listeners"], state["model"] = [], None  # the child needs neither
        return state

    def store(self) -> VersionStore:
        return VersionStore(self.store_dir, self.starter)

    def config(self) -> dict[str, Any]:
        return {"iterations": "auto", "max_minutes": 8.0, "lr": 5e-4, "batch_size": 2, "val_fraction": 0.2,
                "val_every": 100, "tolerance": 0.0, "from_scratch": False, "network": "unet_small",
                "seed": 0, "threads": default_threads()}

    # ------------------------------------------------------------ child process
    def run(self, ctx: JobContext) -> dict[str, Any]:
        req = {**self.config(), **ctx.request}
        pairs = {pair_id(p): p for p in req.get("pairs", [])}
        if not pairs:
            raise ValueError("no final labels to train on")
        iterations, batch = auto_iterations(req["iterations"], len(pairs)), int(req["batch_size"])
        max_s, lr = float(req["max_minutes"]) * 60, float(req["lr"])
        if iterations < 1 or batch < 1 or lr <= 0 or max_s <= 0:
            raise ValueError("iterations, batch_size, lr and max_minutes must be positive")
        if req["network"] not in NETWORKS:
            raise ValueError(f"unknown network {req['network']!r}")
        torch.set_num_threads(max(1, int(req["threads"])))
        torch.manual_seed(int(req["seed"]))
        device = pick_device(self.device)
        store = self.store()
        base_version = store.published()
        base_folder = store.published_folder()
        if base_folder is None or req["from_scratch"]:
            bundle, base_version = new_bundle({"network": req["network"]}), None
        else:
            bundle = load_bundle(base_folder)
        cfg = bundle.config
        train_ids, val_ids = split_cases(sorted(pairs), float(req["val_fraction"]))
        ctx.log(f"{len(train_ids)} training and {len(val_ids)} validation cases; base version {base_version}")
        cases = {}
        for i, cid in enumerate(sorted(pairs)):
            cases[cid] = load_case(Path(pairs[cid]["image"]), Path(pairs[cid]["label"]), cfg, cid,
                                   cache_dir=self.cache_dir)
            ctx.report(stage="reading", epoch=0, total_epochs=iterations, cases=i + 1)
        train, val = [cases[i] for i in train_ids], [cases[i] for i in val_ids]
        bundle.net.to(device)
        baseline = evaluate(bundle.net, val, cfg, device)["dice"] if base_version is not None else None
        ctx.log(f"published model validation Dice: {baseline}")
        best = {"dice": -1.0, "state": None, "iteration": 0}
        clock = Timer()
        losses: list[float] = []

        def checkpoint(it: int) -> None:
            dice = evaluate(bundle.net, val, cfg, device)["dice"]
            bundle.net.train()
            if dice == dice and dice > best["dice"]:
                best.update(dice=dice, state=copy.deepcopy(bundle.net.state_dict()), iteration=it)
            ctx.log(f"iteration {it}: validation Dice {dice:.4f} (best {best['dice']:.4f})")

        def step(it: int, loss: float) -> bool:
            losses.append(loss)
            if it % 10 == 0 or it == iterations:
                ctx.report(stage="training", epoch=it, total_epochs=iterations, loss=loss,
                           best_metric=max(best["dice"], 0.0), baseline_metric=baseline, elapsed_s=clock())
            if it % int(req["val_every"]) == 0 and it < iterations:
                checkpoint(it)
            return ctx.should_stop() or clock() > max_s

        train_iterations(bundle.net, train, cfg, iterations, device, lr=lr, batch_size=batch,
                         seed=int(req["seed"]), on_step=step)
        if ctx.should_stop():
            raise RuntimeError("stopped")
        checkpoint(len(losses))
        if best["state"] is not None:  # None only when validation never gave a Dice (nothing labelled there)
            bundle.net.load_state_dict(best["state"])
        metrics = evaluate(bundle.net, val, cfg, device)
        seconds = clock()
        data = [{"image": cid, "label_file": Path(pairs[cid]["label"]).name,
                 "split": "validation" if cid in val_ids else "train"} for cid in sorted(pairs)]
        bundle.card = {
            "source": "training", "base_version": base_version, "iterations": len(losses),
            "best_iteration": best["iteration"], "lr": lr, "batch_size": batch, "training_seconds": round(seconds, 1),
            "validation_dice": metrics["dice"], "validation_dice_per_class": metrics["per_class"],
            "train_cases": train_ids, "validation_cases": val_ids, "device": str(device),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        out = save_bundle(bundle, ctx.workdir / "candidate")
        ctx.report(stage="done", epoch=len(losses), total_epochs=iterations, loss=losses[-1] if losses else None,
                   best_metric=metrics["dice"], baseline_metric=baseline, elapsed_s=seconds)
        return {"bundle": str(out), "validation_dice": metrics["dice"], "baseline_dice": baseline,
                "per_class": metrics["per_class"], "base_version": base_version, "data": data,
                "iterations": len(losses), "seconds": seconds, "tolerance": float(req["tolerance"]),
                "cases": len(pairs),
                "final_loss": losses[-1] if losses else None}

    # ------------------------------------------------------------ server process
    def finish(self, result: dict[str, Any]) -> None:
        """Store the run as a version; publish it if the rule allows; reload; notify listeners."""
        store = self.store()
        publish, reason = should_publish(result["validation_dice"], result["baseline_dice"], result["tolerance"])
        meta = {k: result[k] for k in ("validation_dice", "baseline_dice", "per_class", "base_version", "data",
                                        "iterations", "seconds")}
        version = store.add(Path(result["bundle"]), {**meta, "source": "training", "published_on_creation": publish,
                                                     "decision": reason})
        result.update(version=version, published=publish, decision=reason)
        if publish:
            store.publish(version, reason)
            if self.model is not None:
                try:
                    self.model.reload()
                except ModelError:
                    store.publish(result["base_version"] or 0, "new version failed to load")
                    raise
        for listener in self.listeners:
            listener(result)
