"""Datastores: where images and their versioned labels live."""

from .errors import DatastoreError, InvalidId, InvalidUpload, NotFound
from .ids import validate_id
from .local import LabelVersion, LocalDatastore

__all__ = [
    "DatastoreError",
    "InvalidId",
    "InvalidUpload",
    "LabelVersion",
    "LocalDatastore",
    "NotFound",
    "validate_id",
]
