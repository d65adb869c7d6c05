"""Typed errors of the MedSeg client, so the UI can say what went wrong."""

from __future__ import annotations


class MedSegError(Exception):
    """Base class of every error the client raises."""


class ServerUnavailable(MedSegError):
    """The server could not be reached (not running, wrong URL, network down, timed out)."""


class ClientError(MedSegError):
    """The server refused the request (4xx); ``detail`` is the server's own message."""

    def __init__(self, status: int, detail: str, method: str = "", url: str = "") -> None:
        self.status = status
        self.detail = detail
        self.method = method
        self.url = url
        super().__init__(f"{status}: {detail}")


class NotFound(ClientError):
    """404: the image, label, model or session does not exist."""


class ServerError(MedSegError):
    """The server failed (5xx) or answered something that is not the MONAI Label protocol."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"server error {status}: {detail}")
