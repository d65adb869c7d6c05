"""Automatic segmentation of liver, portal vein, hepatic veins, IVC and tumours with a MONAI network.

Serves the published version of its :class:`~medseg_server.training.versions.VersionStore`
(the starter weights until a training run publishes a better model). Inference: resample to the
network grid, scale HU, sliding-window softmax, resample probabilities back and take the arg-max,
so the answer has exactly the request image's geometry. CUDA is used when available.
"""

from __future__ import annotations

import io
import json
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch

from ..labels import LABELS
from ..training.versions import VersionStore
from .base import InferRequest, InferResult, InferTask, ModelError, label_like
from .bundle import Bundle, bundle_from_zip, load_bundle, new_bundle, save_bundle
from .networks import pick_device
from .predict import predict_probs
from .preprocess import image_to_input, probs_to_image_grid

STARTER_DIR = Path(__file__).parent / "weights" / "auto_seg"


class AutoSegModel(InferTask):
    """``POST /infer/auto_seg``: every structure of the label table in one pass."""

    name = "auto_seg"
    type = "segmentation"
    labels = dict(LABELS)
    description = "Automatic liver, vessel and tumour segmentation (MONAI UNet; improves with final labels)"

    def __init__(self, store_dir: Path, starter: Path | None = STARTER_DIR, device: str = "auto") -> None:
        self.store = VersionStore(store_dir, starter)
        self.device_setting = device
        self._lock = threading.Lock()
        self._bundle: Bundle | None = None
        self._version: int | None = None

    # ------------------------------------------------------------- weights
    @property
    def device(self) -> torch.device:
        return pick_device(self.device_setting)

    def reload(self) -> int | None:
        """Load the published version (call after publishing or rollback); returns its number."""
        folder = self.store.published_folder()
        with self._lock:
            if folder is None:
                self._bundle, self._version = None, None
                return None
            bundle = load_bundle(folder, map_location="cpu")
            bundle.net.to(self.device).eval()
            self._bundle, self._version = bundle, self.store.published()
            return self._version

    def bundle(self) -> tuple[Bundle, int | None]:
        """The loaded bundle and its version, loading it on first use."""
        if self._bundle is None or self._version != self.store.published():
            self.reload()
        if self._bundle is None:
            raise ModelError(f"model {self.name!r} has no weights yet: train it or PUT a bundle")
        return self._bundle, self._version

    def config(self) -> dict[str, Any]:
        return {"version": self.store.published(), "overlap": 0.25}

    def info(self) -> dict[str, Any]:
        out = super().info()
        folder = self.store.published_folder()
        if folder is not None:
            try:
                out["bundle"] = json.loads((folder / "config.json").read_text())
            except (OSError, ValueError):
                pass
        return out

    def weights_path(self) -> Path | None:
        folder = self.store.published_folder()
        return folder / "model.pt" if folder is not None and (folder / "model.pt").exists() else None

    def load_weights(self, data: bytes) -> None:
        """``PUT /model/auto_seg``: a zipped bundle folder, or a state dict for the current network.

        The weights become a new version and are published (the user chose them explicitly).
        """
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "bundle"
            if zipfile.is_zipfile(io.BytesIO(data)) and _is_bundle_zip(data):
                bundle_from_zip(data, target)
            else:
                current, _ = self.bundle()
                try:
                    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
                    fresh = new_bundle(current.config)
                    fresh.net.load_state_dict(state)
                except Exception as exc:  # noqa: BLE001 - any unreadable upload is a 422
                    raise ModelError(f"weights are neither a bundle zip nor a state dict for "
                                     f"{current.config['network']}: {str(exc)[:200]}") from None
                fresh.card = {"source": "upload"}
                save_bundle(fresh, target)
            version = self.store.add(target, {"source": "upload", "validation_dice": None})
        self.store.publish(version, "uploaded by a user")
        self.reload()

    # ------------------------------------------------------------- inference
    def infer(self, request: InferRequest) -> InferResult:
        overlap = float(request.params.get("overlap", 0.25))
        if not 0.0 <= overlap < 1.0:
            raise ModelError("overlap must be in [0, 1)")
        bundle, version = self.bundle()
        label = self.predict_labels(request.image, overlap, bundle)
        return InferResult(label_like(label, request.image),
                           {"label_names": dict(bundle.config["labels"]), "model_version": version})

    def predict_labels(self, image: sitk.Image, overlap: float = 0.25, bundle: Bundle | None = None) -> np.ndarray:
        """The arg-max label map (z, y, x) of the published model on ``image``'s own grid."""
        bundle = bundle or self.bundle()[0]
        ref, array = image_to_input(image, bundle.config)
        with self._lock:
            probs = predict_probs(bundle.net, array, bundle.config, self.device, overlap=overlap)
        label = probs_to_image_grid(probs, ref, image)
        label[~np.isin(label, list(bundle.config["labels"].values()))] = 0
        return label


def _is_bundle_zip(data: bytes) -> bool:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return any(Path(n).name == "config.json" for n in zf.namelist())
