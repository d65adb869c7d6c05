"""Open the datastore the settings ask for: the studies folder, or a PACS over DICOMweb."""

from __future__ import annotations

from ..settings import Settings
from .local import LocalDatastore


def open_datastore(settings: Settings) -> LocalDatastore:
    """:class:`DicomWebDatastore` when ``settings.dicomweb`` is set, else the embedded one."""
    if getattr(settings, "dicomweb", None):
        from .dicomweb import DicomWebDatastore

        return DicomWebDatastore(
            settings.studies,
            settings.dicomweb,
            cache_bytes=int(settings.dicomweb_cache_mb * 1024 * 1024),
            refresh_s=settings.dicomweb_refresh_s,
            name=f"{settings.name} DICOMweb datastore",
        )
    return LocalDatastore(settings.studies, name=f"{settings.name} datastore")
