"""MONAI segmentation networks built by name, so the architecture is a setting.

``unet_small`` and ``segresnet_small`` are fast enough to train on a CPU; ``unet``, ``unetr``,
``swinunetr`` and ``dynunet`` are the larger choices for a GPU. Every network has dropout so
that MC-dropout uncertainty works with any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from monai.networks.nets import UNETR, DynUNet, SegResNet, SwinUNETR, UNet


def _unet(in_ch: int, out_ch: int, channels=(8, 16, 32, 64), strides=(2, 2, 2), dropout: float = 0.1,
          num_res_units: int = 1, **_: Any) -> torch.nn.Module:
    return UNet(spatial_dims=3, in_channels=in_ch, out_channels=out_ch, channels=tuple(channels),
                strides=tuple(strides), num_res_units=num_res_units, dropout=dropout, norm="INSTANCE")


def _unet_large(in_ch: int, out_ch: int, **kw: Any) -> torch.nn.Module:
    kw.setdefault("channels", (32, 64, 128, 256, 320))
    kw.setdefault("strides", (2, 2, 2, 2))
    kw.setdefault("num_res_units", 2)
    return _unet(in_ch, out_ch, **kw)


def _segresnet(in_ch: int, out_ch: int, init_filters: int = 8, dropout: float = 0.1, **_: Any) -> torch.nn.Module:
    return SegResNet(spatial_dims=3, in_channels=in_ch, out_channels=out_ch, init_filters=init_filters,
                     dropout_prob=dropout, blocks_down=(1, 1, 1, 1), blocks_up=(1, 1, 1))


def _unetr(in_ch: int, out_ch: int, roi_size=(96, 96, 96), dropout: float = 0.1, feature_size: int = 16,
           **_: Any) -> torch.nn.Module:
    return UNETR(in_channels=in_ch, out_channels=out_ch, img_size=tuple(roi_size), feature_size=feature_size,
                 dropout_rate=dropout)


def _swinunetr(in_ch: int, out_ch: int, dropout: float = 0.1, feature_size: int = 24, **_: Any) -> torch.nn.Module:
    return SwinUNETR(in_channels=in_ch, out_channels=out_ch, feature_size=feature_size, drop_rate=dropout)


def _dynunet(in_ch: int, out_ch: int, filters=(16, 32, 64, 128), dropout: float = 0.1, **_: Any) -> torch.nn.Module:
    n = len(filters)
    kernels = [[3, 3, 3]] * n
    strides = [[1, 1, 1]] + [[2, 2, 2]] * (n - 1)
    return DynUNet(spatial_dims=3, in_channels=in_ch, out_channels=out_ch, kernel_size=kernels, strides=strides,
                   upsample_kernel_size=strides[1:], filters=list(filters), dropout=dropout, res_block=True)


NETWORKS: dict[str, Callable[..., torch.nn.Module]] = {
    "unet_small": _unet,
    "segresnet_small": _segresnet,
    "unet": _unet_large,
    "unetr": _unetr,
    "swinunetr": _swinunetr,
    "dynunet": _dynunet,
}


def build_network(name: str, in_channels: int, out_channels: int, **kwargs: Any) -> torch.nn.Module:
    """A freshly initialised network ``name`` (one of :data:`NETWORKS`) with ``kwargs`` as options.

    Raises:
        ValueError: unknown network name.
    """
    factory = NETWORKS.get(name)
    if factory is None:
        raise ValueError(f"unknown network {name!r}; choose one of {', '.join(NETWORKS)}")
    return factory(in_channels, out_channels, **kwargs)


def pick_device(setting: str = "auto") -> torch.device:
    """``auto`` = CUDA when available, CPU otherwise; ``cpu`` / ``cuda[:N]`` as given."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def enable_dropout(net: torch.nn.Module) -> None:
    """Eval mode except dropout layers (MC-dropout sampling)."""
    net.eval()
    for module in net.modules():
        if isinstance(module, torch.nn.Dropout | torch.nn.Dropout3d | torch.nn.Dropout2d):
            module.train()
