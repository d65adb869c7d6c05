"""Typed server settings (environment variables prefixed ``MEDSEG_`` or CLI flags)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the server needs to start; passed to :func:`medseg_server.app.create_app`."""

    model_config = SettingsConfigDict(env_prefix="MEDSEG_", extra="ignore")

    studies: Path = Field(description="Folder holding the images of the embedded datastore.")
    name: str = "MedSeg"
    description: str = "Interactive liver, vessel and tumour segmentation for CT"
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_mb: float = Field(default=1024.0, gt=0, description="Largest accepted upload (MiB).")
    session_ttl_s: float = Field(default=3600.0, gt=0, description="Lifetime of an idle session.")
    auto_train_every: int = Field(
        default=0, ge=0, description="Start training after this many new final labels (0 = never)."
    )
    device: str = Field(default="auto", description="'auto', 'cpu' or 'cuda[:N]'.")
    # --- PACS, security, multi-annotator (issue 7)
    dicomweb: str | None = Field(default=None, description="DICOMweb root URL of a PACS: serve its CT series.")
    dicomweb_cache_mb: float = Field(default=2048.0, gt=0, description="Local cache of fetched series (MiB).")
    dicomweb_refresh_s: float = Field(default=30.0, ge=0, description="Re-list the PACS at most this often.")
    auth: Literal["auto", "on", "off"] = Field(
        default="auto", description="'auto': off only for the embedded default (loopback, no PACS), else on."
    )
    cors_origins: list[str] = Field(default_factory=list, description="Browser origins allowed (none by default).")
    lease_ttl_s: float = Field(default=900.0, gt=0, description="How long an image stays leased without renewal.")
    require_lease: bool | None = Field(default=None, description="Label submission needs the lease (default: with auth).")
    interactive_prior: bool = Field(
        default=True, description="Interactive targets start from the published auto_seg model where its validation "
                                  "Dice for the class is high enough (computed in the background per session).")

    @property
    def auth_enabled(self) -> bool:
        """Whether requests need a token (see :mod:`medseg_server.auth`)."""
        if self.auth != "auto":
            return self.auth == "on"
        return self.host not in ("127.0.0.1", "localhost", "::1") or bool(self.dicomweb)

    @property
    def leases_required(self) -> bool:
        """Whether submitting a label needs the image's lease."""
        return self.auth_enabled if self.require_lease is None else self.require_lease

    @property
    def max_upload_bytes(self) -> int:
        """Upload limit in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def state_dir(self) -> Path:
        """Folder for the index, sessions and model versions (inside the studies folder)."""
        return self.studies / ".medseg"
