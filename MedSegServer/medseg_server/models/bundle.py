"""A MONAI-bundle-like model folder: ``model.pt`` (state dict), ``config.json``, ``model_card.json``.

The same loader serves the starter weights shipped with the package, every version a training
run produces and a folder a user brings (``PUT /model/{name}`` with a zip, or copied by hand).

``config.json``::

    {"network": "unet_small", "network_kwargs": {...}, "labels": {"liver": 1, ...},
     "spacing": [3.0, 3.0, 3.0],          # mm, (x, y, z): the grid the network works on
     "hu_window": [-200, 300],            # HU mapped to [0, 1] and clipped
     "roi_size": [96, 128, 128],            # sliding-window size, array order (z, y, x)
     "patch_size": [32, 48, 48]}          # training patch, array order (z, y, x)

``model_card.json``: free-form facts about the weights (data, epochs, validation Dice, time).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..labels import LABELS
from .base import ModelError
from .networks import NETWORKS, build_network

WEIGHTS = "model.pt"
CONFIG = "config.json"
CARD = "model_card.json"

DEFAULT_CONFIG: dict[str, Any] = {
    "network": "unet_small",
    "network_kwargs": {},
    "labels": dict(LABELS),
    "spacing": [3.0, 3.0, 3.0],
    "hu_window": [-200.0, 300.0],
    "roi_size": [96, 128, 128],
    "patch_size": [32, 48, 48],
}


@dataclass
class Bundle:
    """A network with its configuration and model card."""

    net: torch.nn.Module
    config: dict[str, Any]
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def out_channels(self) -> int:
        return max(self.config["labels"].values()) + 1


def check_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` completed with defaults and checked; raises :class:`ModelError` when invalid."""
    cfg = {**DEFAULT_CONFIG, **(config or {})}
    if cfg["network"] not in NETWORKS:
        raise ModelError(f"unknown network {cfg['network']!r}; choose one of {', '.join(NETWORKS)}")
    labels = cfg["labels"]
    if not isinstance(labels, dict) or not labels or not all(
        isinstance(v, int) and 0 < v < 256 for v in labels.values()
    ):
        raise ModelError("config 'labels' must map names to label values 1..255")
    try:
        spacing = [float(s) for s in cfg["spacing"]]
        low, high = (float(v) for v in cfg["hu_window"])
        roi = [int(r) for r in cfg["roi_size"]]
        patch = [int(r) for r in cfg["patch_size"]]
    except (TypeError, ValueError):
        raise ModelError("config spacing, hu_window and roi_size must be numbers") from None
    if len(spacing) != 3 or min(spacing) <= 0 or len(roi) != 3 or min(roi) < 8 or not low < high \
            or len(patch) != 3 or min(patch) < 8:
        raise ModelError("config needs 3 positive spacings, 3 roi and patch sizes >= 8 and hu_window low < high")
    cfg.update(spacing=spacing, hu_window=[low, high], roi_size=roi, patch_size=patch)
    return cfg


def new_bundle(config: dict[str, Any] | None = None) -> Bundle:
    """A randomly initialised network for ``config``."""
    cfg = check_config(config or {})
    out_channels = max(cfg["labels"].values()) + 1
    net = build_network(cfg["network"], 1, out_channels, roi_size=cfg["roi_size"], **cfg["network_kwargs"])
    return Bundle(net, cfg, {})


def load_bundle(folder: Path, map_location: str | torch.device = "cpu") -> Bundle:
    """Read a bundle folder.

    Raises:
        ModelError: missing files, bad JSON or weights that do not fit the configured network.
    """
    folder = Path(folder)
    try:
        config = json.loads((folder / CONFIG).read_text())
        card = json.loads((folder / CARD).read_text()) if (folder / CARD).exists() else {}
        state = torch.load(folder / WEIGHTS, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise ModelError(f"bundle {folder} is incomplete: {exc.filename} missing") from None
    except (ValueError, RuntimeError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelError(f"bundle {folder} is unreadable: {exc}") from None
    bundle = new_bundle(config)
    bundle.card = card
    try:
        bundle.net.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ModelError(f"weights do not fit network {bundle.config['network']}: {str(exc)[:300]}") from None
    return bundle


def save_bundle(bundle: Bundle, folder: Path) -> Path:
    """Write ``bundle`` to ``folder`` atomically (a complete folder appears, or nothing changes)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-bundle-", dir=folder.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is ordinary readable data
        state = {k: v.detach().cpu() for k, v in bundle.net.state_dict().items()}
        torch.save(state, tmp / WEIGHTS)
        (tmp / CONFIG).write_text(json.dumps(bundle.config, indent=1))
        (tmp / CARD).write_text(json.dumps(bundle.card, indent=1, default=str))
        for name in (WEIGHTS, CONFIG, CARD):
            with open(tmp / name, "rb+") as fh:
                os.fsync(fh.fileno())
        if folder.exists():
            old = folder.with_name(f".old-{folder.name}-{os.getpid()}")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def bundle_to_zip(folder: Path) -> bytes:
    """The bundle folder as zip bytes (``GET /model/{name}``)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in (WEIGHTS, CONFIG, CARD):
            if (Path(folder) / name).exists():
                zf.write(Path(folder) / name, name)
    return buf.getvalue()


def bundle_from_zip(data: bytes, folder: Path) -> Bundle:
    """Check a zipped bundle (``PUT /model/{name}``), then write it to ``folder``.

    Raises:
        ModelError: not a zip, missing members, or weights that do not load.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = {Path(n).name: n for n in zf.namelist() if Path(n).name in (WEIGHTS, CONFIG, CARD)}
            if WEIGHTS not in members or CONFIG not in members:
                raise ModelError(f"the zip must hold {WEIGHTS} and {CONFIG}")
            with tempfile.TemporaryDirectory() as tmp:
                for name, member in members.items():
                    (Path(tmp) / name).write_bytes(zf.read(member))
                bundle = load_bundle(Path(tmp))
    except zipfile.BadZipFile:
        raise ModelError("weights must be a zip of a bundle folder (model.pt, config.json, model_card.json)") from None
    save_bundle(bundle, folder)
    return bundle
