"""Requests built byte for byte the way MONAI Label's Slicer plugin builds them.

The plugin encodes multipart bodies by hand with a fixed boundary and sends each file under its
full local path as file name; it parses answers with a form parser that keeps the first part
that has a file name. These helpers reproduce that so the server is tested against real shapes.
"""

from __future__ import annotations

import email.parser
import email.policy
import http.client
import json
import mimetypes
from urllib.parse import quote_plus, urlparse

BOUNDARY = "----------lImIt_of_THE_fIle_eW_$"


def encode_multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[str, bytes]:
    lines: list[bytes] = []
    for key, value in fields.items():
        lines += [f"--{BOUNDARY}".encode(), f'Content-Disposition: form-data; name="{key}"'.encode(), b"", value.encode()]
    for key, (filename, data) in files.items():
        ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        lines += [
            f"--{BOUNDARY}".encode(),
            f'Content-Disposition: form-data; name="{key}"; filename="{filename}"'.encode(),
            f"Content-Type: {ctype}".encode(),
            b"",
            data,
        ]
    lines += [f"--{BOUNDARY}--".encode(), b""]
    return f"multipart/form-data; boundary={BOUNDARY}", b"\r\n".join(lines)


def send(base_url: str, method: str, selector: str, body: bytes | None = None, content_type: str | None = None):
    """One request on a fresh connection, as the plugin does; returns (status, headers, body)."""
    parsed = urlparse(base_url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    headers = {}
    if body is not None:
        headers["content-type"] = content_type or "application/json"
        headers["content-length"] = str(len(body))
    conn.request(method, selector, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), data


def parse_form_answer(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """Parse a multipart answer into (form fields, files by file name), like the plugin's parser."""
    ctype = {k.lower(): v for k, v in headers.items()}["content-type"]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {ctype}\r\n\r\n".encode() + body
    )
    form: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        if filename:
            files[filename] = payload
        else:
            form[part.get_param("name", header="content-disposition")] = payload.decode()
    return form, files


def q(value: str) -> str:
    return quote_plus(value)


def as_json(body: bytes):
    return json.loads(body) if body else None
