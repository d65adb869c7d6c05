"""Validation of image IDs and label tags: nothing that can leave the studies folder."""

from __future__ import annotations

import re

from .errors import InvalidId

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_id(value: str | None, what: str = "image id") -> str:
    """Return ``value`` when it is a safe identifier, else raise :class:`InvalidId`.

    Allowed: 1-128 ASCII letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit,
    and no ``..``. That excludes slashes, backslashes, NUL, absolute paths and Unicode look-alikes.
    """
    if not isinstance(value, str) or not value:
        raise InvalidId(f"{what} is required")
    if not _ID.fullmatch(value) or ".." in value:
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise InvalidId(
            f"invalid {what} {shown!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value
