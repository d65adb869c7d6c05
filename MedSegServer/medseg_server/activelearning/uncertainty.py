"""Uncertainty of the published model on every unlabelled image: MC-dropout and TTA entropy.

Computed in the background (a ``scoring`` job, started after each new published model or by
``POST /scoring/uncertainty``) and stored per image under ``state/uncertainty/<model>/``::

    <image>.json                 {"mc_dropout": score, "tta": score, "mc_dropout_classes": score, "mc_dropout_dice": score,
                                  "features": [...], "model_version": n, "ts": ...}
    <image>.<method>.nii.gz      voxel-wise entropy (float32, network grid, image's physical space)

Labelled images (request ``describe``) get a record with ``features`` only (their descriptor under the
same model), which the diversity strategy (:mod:`.diversity`) measures the candidates against.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch

from .. import imageio
from ..atomic import atomic_write, atomic_write_bytes
from ..datastore import validate_id
from ..models.bundle import load_bundle
from ..models.networks import pick_device
from ..models.predict import entropy_map, mc_dropout_samples, predict_probs, tta_samples, uncertainty_score
from ..models.preprocess import image_to_input
from ..training.jobs import BackgroundJob, JobContext
from .class_scores import CLASS_SCORES
from .diversity import describe

METHODS = ("mc_dropout", "tta")


class UncertaintyStore:
    """Per-image uncertainty scores and volumes of one model."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _json(self, image_id: str) -> Path:
        return self.root / f"{validate_id(image_id)}.json"

    def volume_path(self, image_id: str, method: str) -> Path:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}")
        return self.root / f"{validate_id(image_id)}.{method}.nii.gz"

    def get(self, image_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._json(image_id).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def put(self, image_id: str, record: dict[str, Any], volumes: dict[str, sitk.Image]) -> None:
        """Write the volumes, then the record (so a visible record has its volumes)."""
        for method, volume in volumes.items():
            atomic_write(self.volume_path(image_id, method), lambda tmp, v=volume: sitk.WriteImage(v, str(tmp), True))
        atomic_write_bytes(self._json(image_id), json.dumps(record).encode())

    def records(self) -> dict[str, dict[str, Any]]:
        """``{image_id: record}`` of every readable record."""
        out = {}
        if self.root.exists():
            for path in self.root.glob("*.json"):
                try:
                    record = json.loads(path.read_text())
                except ValueError:
                    continue
                if isinstance(record, dict):
                    out[path.name[: -len(".json")]] = record
        return out

    def scores(self, method: str) -> dict[str, tuple[float, dict[str, Any]]]:
        """``{image_id: (score, record)}`` for every image scored with ``method``."""
        return {i: (float(r[method]), r) for i, r in self.records().items() if isinstance(r.get(method), int | float)}

    def features(self, model_version: Any) -> dict[str, list[float]]:
        """``{image_id: descriptor}`` of every image described under ``model_version``."""
        return {i: r["features"] for i, r in self.records().items()
                if r.get("model_version") == model_version and isinstance(r.get("features"), list) and r["features"]}


def image_uncertainty(net: torch.nn.Module, image: sitk.Image, cfg: dict[str, Any], device: torch.device,
                      samples: int = 4, methods: tuple[str, ...] = METHODS) -> tuple[dict[str, float], dict[str, sitk.Image]]:
    """Scores and entropy volumes (network grid, image's physical space) of one image."""
    scores, volumes, _ = image_uncertainty_and_features(net, image, cfg, device, samples, methods)
    return scores, volumes


def image_uncertainty_and_features(net: torch.nn.Module, image: sitk.Image, cfg: dict[str, Any], device: torch.device,
                                   samples: int = 4, methods: tuple[str, ...] = METHODS,
                                   classes: list[int] | None = None
                                   ) -> tuple[dict[str, float], dict[str, sitk.Image], list[float]]:
    """:func:`image_uncertainty` plus the image's descriptor (:func:`.diversity.describe`) from the mean of
    the first method's samples (no extra network pass); the MC-dropout samples also give the class-balanced
    scores of :data:`.class_scores.CLASS_SCORES` over ``classes`` (label values; None = every class)."""
    ref, array = image_to_input(image, cfg)
    scores, volumes, features = {}, {}, []
    for method in methods:
        if method == "mc_dropout":
            probs = mc_dropout_samples(net, array, cfg, device, samples)
        elif method == "tta":
            probs = tta_samples(net, array, cfg, device, samples)
        else:
            raise ValueError(f"unknown uncertainty method {method!r}")
        entropy = entropy_map(probs)
        scores[method] = uncertainty_score(probs, entropy)
        if method == "mc_dropout":
            scores.update({name: score(probs, entropy, classes) for name, score in CLASS_SCORES.items()})
        if not features:
            features = describe(array, np.mean(probs, axis=0), cfg["spacing"])
        volume = sitk.GetImageFromArray(entropy)
        volume.CopyInformation(ref)
        volumes[method] = volume
    return scores, volumes, features


def image_features(net: torch.nn.Module, image: sitk.Image, cfg: dict[str, Any], device: torch.device) -> list[float]:
    """Descriptor of an image from one plain prediction (for labelled images, which are not scored)."""
    _, array = image_to_input(image, cfg)
    return describe(array, predict_probs(net, array, cfg, device), cfg["spacing"])


class UncertaintyJob(BackgroundJob):
    """Score the given images with a bundle (request: ``images`` {id: path}, ``bundle`` folder, ``version``;
    ``describe`` {id: path}: labelled images that only get their descriptor).

    ``classes`` (label values, optional): the classes the class-balanced scores weigh (default: all).
    Started by ``POST /uncertainty/`` and after every newly published model, on the scoring runner.
    """

    name = "uncertainty"
    description = "MC-dropout and test-time-augmentation entropy of the published model per unlabelled image"

    def __init__(self, store_root: Path, device: str = "auto") -> None:
        self.store_root = Path(store_root)
        self.device = device

    def config(self) -> dict[str, Any]:
        return {"samples": 4, "methods": list(METHODS), "threads": 1}

    def run(self, ctx: JobContext) -> dict[str, Any]:
        req = {**self.config(), **ctx.request}
        images: dict[str, str] = req.get("images") or {}
        if not req.get("bundle"):
            raise ValueError("no published model to score with")
        methods = tuple(m for m in req["methods"] if m in METHODS)
        samples = max(2, int(req["samples"]))
        torch.set_num_threads(max(1, int(req["threads"])))
        device = pick_device(self.device)
        bundle = load_bundle(Path(req["bundle"]))
        bundle.net.to(device)
        store = UncertaintyStore(self.store_root)
        done = {}
        for i, (image_id, path) in enumerate(sorted(images.items())):
            if ctx.should_stop():
                break
            try:
                scores, volumes, features = image_uncertainty_and_features(
                    bundle.net, imageio.read_image(Path(path)), bundle.config, device, samples, methods,
                    req.get("classes"))
            except imageio.ImageError as exc:  # one unreadable image must not stop the others
                ctx.log(f"{image_id}: skipped ({exc})")
                continue
            store.put(image_id, {**scores, "features": features, "model_version": req.get("version"),
                                 "samples": samples, "ts": time.time()}, volumes)
            done[image_id] = scores
            ctx.report(epoch=i + 1, total_epochs=len(images), image=image_id)
            ctx.log(f"{image_id}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        described = 0
        for image_id, path in sorted((req.get("describe") or {}).items()):  # labelled images: descriptor only
            if ctx.should_stop():
                break
            try:
                features = image_features(bundle.net, imageio.read_image(Path(path)), bundle.config, device)
            except imageio.ImageError as exc:
                ctx.log(f"{image_id}: not described ({exc})")
                continue
            store.put(image_id, {"features": features, "model_version": req.get("version"), "ts": time.time()}, {})
            described += 1
        return {"scored": len(done), "described": described, "model_version": req.get("version"), "scores": done}
