"""Datastore errors, each mapped to one HTTP status by the API layer."""


class DatastoreError(Exception):
    """Base class; ``status`` is the HTTP status the API answers with."""

    status = 400


class InvalidId(DatastoreError):
    """An image ID or tag that is not allowed (path tricks, odd characters)."""

    status = 400


class NotFound(DatastoreError):
    """The image, label or version does not exist."""

    status = 404


class InvalidUpload(DatastoreError):
    """An uploaded file that cannot be stored (unreadable, wrong geometry, too large)."""

    status = 422


class Conflict(DatastoreError):
    """The request conflicts with what is stored (e.g. the image ID exists already)."""

    status = 409
