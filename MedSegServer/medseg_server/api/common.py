"""Helpers shared by the routers: context access, bounded uploads, JSON form fields, files."""

from __future__ import annotations

import json
from pathlib import PureWindowsPath
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request, UploadFile
from fastapi.responses import Response

from ..context import AppContext

CHUNK = 1 << 20


def get_ctx(request: Request) -> AppContext:
    """FastAPI dependency: the app's context."""
    return request.app.state.ctx


def client_filename(name: str | None) -> str:
    """Base name of an uploaded file's name, which clients may send as a full (Windows) path."""
    return PureWindowsPath(name or "").name


async def read_upload(upload: UploadFile, limit: int, what: str = "file") -> bytes:
    """Read an upload fully, refusing more than ``limit`` bytes with 413."""
    chunks, total = [], 0
    while True:
        chunk = await upload.read(CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise HTTPException(413, f"{what} is larger than the {limit // (1024 * 1024)} MiB upload limit")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_field(text: str | None, what: str = "params") -> dict[str, Any]:
    """Parse a JSON-object form field; a clear 422 when it is not one."""
    if text is None or text == "":
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise HTTPException(422, f"'{what}' is not valid JSON: {exc}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise HTTPException(422, f"'{what}' must be a JSON object")
    return value


def file_response(data: bytes, filename: str, media_type: str = "application/octet-stream") -> Response:
    """Bytes as a download with the ``Content-Disposition`` MONAI Label clients read."""
    try:
        filename.encode("ascii")
        disposition = f'attachment; filename="{filename}"'
    except UnicodeEncodeError:
        disposition = f"attachment; filename*=utf-8''{quote(filename)}"
    return Response(content=data, media_type=media_type, headers={"Content-Disposition": disposition})


def multipart_response(params: dict[str, Any], filename: str, data: bytes, boundary: str) -> Response:
    """MONAI Label's infer answer: a ``params`` JSON part then an ``image`` file part."""
    crlf = b"\r\n"
    body = b"".join(
        [
            f"--{boundary}".encode(), crlf,
            b'Content-Disposition: form-data; name="params"', crlf,
            b"Content-Type: application/json", crlf, crlf,
            json.dumps(params, default=_json_default).encode(), crlf,
            f"--{boundary}".encode(), crlf,
            f'Content-Disposition: form-data; name="image"; filename="{filename}"'.encode(), crlf,
            b"Content-Type: application/octet-stream", crlf, crlf,
            data, crlf,
            f"--{boundary}--".encode(), crlf,
        ]
    )
    return Response(content=body, media_type=f"multipart/form-data; boundary={boundary}")


def _json_default(value: Any) -> Any:
    try:
        return value.item()  # numpy scalars
    except AttributeError:
        pass
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
