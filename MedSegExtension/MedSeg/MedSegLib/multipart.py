"""Minimal parser for the ``multipart/form-data`` answers of ``POST /infer``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_DISPOSITION = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class Part:
    """One part: its form name, file name (if any), content type and raw bytes."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """Split a multipart body into its parts.

    Raises:
        ValueError: no boundary in the content type, or a malformed body.
    """
    match = _BOUNDARY.search(content_type or "")
    if not match:
        raise ValueError(f"no multipart boundary in content type {content_type!r}")
    delimiter = b"--" + match.group(1).encode()
    parts: list[Part] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("malformed multipart part: no header/body separator")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        fields = dict(_DISPOSITION.findall(headers.get("content-disposition", "")))
        parts.append(Part(fields.get("name", ""), fields.get("filename"), headers.get("content-type", ""), data))
    if not parts:
        raise ValueError("multipart body holds no parts")
    return parts
