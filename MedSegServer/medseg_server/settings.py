"""Typed server settings (environment variables prefixed ``MEDSEG_`` or CLI flags)."""

from __future__ import annotations

from pathlib import Path

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

    @property
    def max_upload_bytes(self) -> int:
        """Upload limit in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def state_dir(self) -> Path:
        """Folder for the index, sessions and model versions (inside the studies folder)."""
        return self.studies / ".medseg"
