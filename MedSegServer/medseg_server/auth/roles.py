"""The four roles, ordered: each one may do everything the ones below it may."""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    """``viewer`` reads, ``annotator`` labels, ``reviewer`` curates and trains, ``admin`` administers."""

    viewer = 1
    annotator = 2
    reviewer = 3
    admin = 4

    @classmethod
    def parse(cls, text: str) -> Role:
        """``Role.parse("reviewer")``; ValueError naming the valid roles otherwise."""
        try:
            return cls[str(text).strip().lower()]
        except KeyError:
            raise ValueError(f"unknown role {text!r}: use one of {', '.join(r.name for r in cls)}") from None
