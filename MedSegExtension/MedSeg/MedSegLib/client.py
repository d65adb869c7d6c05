"""One HTTP client for the whole MedSeg / MONAI Label REST API.

Every call has an explicit timeout (``(connect, read)`` seconds), TLS certificates are always
verified by ``requests``, and failures come back as the typed errors of :mod:`MedSegLib.errors`.
No Slicer or Qt import: the Slicer module runs these calls on a worker thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .errors import ClientError, NotFound, ServerError, ServerUnavailable
from .multipart import parse_multipart

CONNECT_TIMEOUT = 5.0
SAFE_RETRIES = Retry(total=2, connect=2, read=1, status=0, other=0, allowed_methods=frozenset({"GET", "HEAD"}),
                     backoff_factor=0.2, raise_on_status=False)
"""A read whose connection was dropped (server restarted, idle keep-alive closed at the moment of the
request) is sent again once; nothing that changes state (POST/PUT/DELETE) is ever re-sent."""


@dataclass
class InferResult:
    """Answer of ``POST /infer``: the JSON ``params`` and the label file (bytes and file name)."""

    params: dict[str, Any]
    label: bytes
    filename: str
    extras: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: Path) -> Path:
        """Write the label to ``folder/<filename>`` and return the path."""
        path = Path(folder) / Path(self.filename).name
        path.write_bytes(self.label)
        return path


class MedSegClient:
    """Client of a MedSeg (or MONAI Label) server.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000``.
        timeout: read timeout of ordinary calls in seconds (inference and uploads get longer ones).
        token: bearer token sent as ``Authorization: Bearer <token>`` when given.
        user: annotator name sent as ``client_id`` with submissions.
    """

    def __init__(self, base_url: str, timeout: float = 30.0, token: str | None = None, user: str | None = None):
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"server URL must start with http:// or https:// (got {base_url!r})")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.user = user
        self._http = requests.Session()
        for scheme in ("http://", "https://"):
            self._http.mount(scheme, HTTPAdapter(max_retries=SAFE_RETRIES))
        if token:
            self._http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    # --------------------------------------------------------------- transport
    def _request(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> requests.Response:
        url = f"{self.base_url}{path}"
        try:
            response = self._http.request(method, url, timeout=(CONNECT_TIMEOUT, timeout or self.timeout), **kwargs)
        except requests.exceptions.Timeout as exc:
            raise ServerUnavailable(f"{method} {path}: no answer from {self.base_url} in time ({exc})") from exc
        except requests.exceptions.ConnectionError as exc:
            raise ServerUnavailable(f"cannot reach the MedSeg server at {self.base_url}: {exc}") from exc
        if response.status_code >= 500:
            raise ServerError(response.status_code, _detail(response))
        if response.status_code == 404:
            raise NotFound(404, _detail(response), method, url)
        if response.status_code >= 400:
            raise ClientError(response.status_code, _detail(response), method, url)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ServerError(response.status_code, f"expected JSON from {path}, got {response.text[:200]!r}") from None

    def _params(self, params: dict[str, Any] | None) -> dict[str, Any]:
        out = dict(params or {})
        if self.user and "client_id" not in out:
            out["client_id"] = self.user
        return out

    # -------------------------------------------------------------------- info
    def info(self) -> dict[str, Any]:
        """``GET /info/``: name, labels, models, trainers, strategies, datastore summary."""
        return self._json("GET", "/info/")

    def datastore(self, output: str = "stats") -> Any:
        """``GET /datastore/?output=stats|all|train``."""
        return self._json("GET", "/datastore/", params={"output": output})

    # ------------------------------------------------------------------ images
    def upload_image(self, path: str | Path, image_id: str | None = None, params: dict | None = None) -> str:
        """Upload a volume file; returns its image ID."""
        path = Path(path)
        with open(path, "rb") as fh:
            files = {"file": (path.name, fh, "application/octet-stream")}
            data = {"params": json.dumps(self._params(params))}
            query = {"image": image_id} if image_id else None
            result = self._json("PUT", "/datastore/image", params=query, files=files, data=data, timeout=max(self.timeout, 300))
        return result["image"]

    def image_exists(self, image_id: str, checksum: str | None = None) -> bool:
        """``HEAD /datastore/image``: True when the server has the image (with that checksum)."""
        query = {"image": image_id}
        if checksum:
            query["check_sum"] = checksum
        try:
            self._request("HEAD", "/datastore/image", params=query)
        except NotFound:
            return False
        return True

    def image_info(self, image_id: str) -> dict[str, Any]:
        """``GET /datastore/image/info``."""
        return self._json("GET", "/datastore/image/info", params={"image": image_id})

    def update_image_info(self, image_id: str, info: dict[str, Any]) -> dict[str, Any]:
        """``PUT /datastore/image/info``: merge fields into the image's info."""
        return self._json("PUT", "/datastore/image/info", params={"image": image_id}, data={"info": json.dumps(info)})

    def download_image(self, image_id: str, folder: str | Path) -> Path:
        """``GET /datastore/image`` saved in ``folder`` under the server's file name."""
        response = self._request("GET", "/datastore/image", params={"image": image_id}, timeout=max(self.timeout, 300))
        return _save_download(response, Path(folder), f"{image_id}.nii.gz")

    def remove_image(self, image_id: str) -> None:
        """``DELETE /datastore/image`` (the server keeps the files in its trash)."""
        self._json("DELETE", "/datastore/image", params={"id": image_id})

    # ------------------------------------------------------------------ labels
    def save_label(
        self, image_id: str, label_path: str | Path, tag: str = "final", params: dict | None = None
    ) -> dict[str, Any]:
        """``PUT /datastore/label``: submit a label; returns the stored version (number, checksum...)."""
        label_path = Path(label_path)
        with open(label_path, "rb") as fh:
            return self._json(
                "PUT", "/datastore/label",
                params={"image": image_id, "tag": tag},
                files={"label": (label_path.name, fh, "application/octet-stream")},
                data={"params": json.dumps(self._params(params))},
                timeout=max(self.timeout, 300),
            )

    def download_label(self, image_id: str, folder: str | Path, tag: str = "final", version: int | None = None) -> Path:
        """``GET /datastore/label`` saved in ``folder``."""
        query: dict[str, Any] = {"label": image_id, "tag": tag}
        if version is not None:
            query["version"] = version
        response = self._request("GET", "/datastore/label", params=query, timeout=max(self.timeout, 300))
        return _save_download(response, Path(folder), f"{image_id}.nii.gz")

    def label_exists(self, image_id: str, tag: str = "final") -> bool:
        """``HEAD /datastore/label``."""
        try:
            self._request("HEAD", "/datastore/label", params={"image": image_id, "tag": tag})
        except NotFound:
            return False
        return True

    def label_versions(self, image_id: str, tag: str | None = None) -> list[dict[str, Any]]:
        """Every kept version of the image's labels (MedSeg extension of the API)."""
        query = {"image": image_id}
        if tag:
            query["tag"] = tag
        return self._json("GET", "/datastore/label/versions", params=query)

    def remove_label(self, image_id: str, tag: str) -> dict[str, Any]:
        """``DELETE /datastore/label``."""
        return self._json("DELETE", "/datastore/label", params={"id": image_id, "tag": tag})

    # ------------------------------------------------------------------- infer
    def infer(
        self,
        model: str,
        image_id: str | None = None,
        params: dict | None = None,
        file: str | Path | None = None,
        label: str | Path | None = None,
        session_id: str | None = None,
        timeout: float | None = None,
    ) -> InferResult:
        """``POST /infer/{model}``: returns the result params and the label file."""
        query: dict[str, Any] = {}
        if image_id:
            query["image"] = image_id
        if session_id:
            query["session_id"] = session_id
        handles = []
        files: dict[str, Any] = {}
        try:
            for key, path in (("file", file), ("label", label)):
                if path is not None:
                    fh = open(path, "rb")  # noqa: SIM115 - closed below
                    handles.append(fh)
                    files[key] = (Path(path).name, fh, "application/octet-stream")
            response = self._request(
                "POST", f"/infer/{quote(model, safe='')}", params=query, files=files or None,
                data={"params": json.dumps(self._params(params))}, timeout=timeout or max(self.timeout, 600),
            )
        finally:
            for fh in handles:
                fh.close()
        ctype = response.headers.get("content-type", "")
        if "multipart" not in ctype:
            raise ServerError(response.status_code, f"expected a multipart answer from /infer, got {ctype!r}")
        try:
            parts = parse_multipart(ctype, response.content)
        except ValueError as exc:
            raise ServerError(response.status_code, str(exc)) from None
        result_params: dict[str, Any] = {}
        for part in parts:
            if part.filename is None and part.name == "params":
                result_params = json.loads(part.data.decode("utf-8"))
        files_out = [p for p in parts if p.filename]
        if not files_out:
            raise ServerError(response.status_code, "the /infer answer holds no label file")
        return InferResult(result_params, files_out[0].data, files_out[0].filename or "label.nii.gz")

    # ------------------------------------------------------ interactive engine
    def open_interactive_session(self, image_id: str, ttl: float = 0) -> dict[str, Any]:
        """``POST /interactive/sessions?image=``: an engine session on a datastore image (``session_id``, ``ttl``)."""
        return self._json("POST", "/interactive/sessions", params={"image": image_id, "ttl": ttl},
                          timeout=max(self.timeout, 120))

    def reset_interactive_target(self, session_id: str, target: str) -> dict[str, Any]:
        """``POST /interactive/sessions/{sid}/reset``: clear one target of the session (undoable there)."""
        return self._json("POST", f"/interactive/sessions/{quote(session_id, safe='')}/reset", json={"label": target})

    def close_interactive_session(self, session_id: str) -> dict[str, Any]:
        """``DELETE /interactive/sessions/{sid}``."""
        return self._json("DELETE", f"/interactive/sessions/{quote(session_id, safe='')}")

    # --------------------------------------------------------- active learning
    def next_sample(self, strategy: str = "random", params: dict | None = None) -> dict[str, Any] | None:
        """``POST /activelearning/{strategy}``: the next image to label, or ``None`` when all are done."""
        result = self._json("POST", f"/activelearning/{quote(strategy, safe='')}", json=self._params(params))
        return result if result and result.get("id") else None

    # ---------------------------------------------------------------- training
    def train_start(self, model: str, params: dict | None = None) -> dict[str, Any]:
        """``POST /train/{model}``: start training in the background."""
        return self._json("POST", f"/train/{quote(model, safe='')}", json=self._params(params))

    def train_status(self, all_tasks: bool = False) -> Any:
        """``GET /train/``: the latest task (or all); ``None`` when there has been none."""
        try:
            return self._json("GET", "/train/", params={"all": str(all_tasks).lower()})
        except NotFound:
            return None

    def train_stop(self) -> Any:
        """``DELETE /train/``."""
        return self._json("DELETE", "/train/")

    def scoring_start(self, method: str, params: dict | None = None) -> dict[str, Any]:
        """``POST /scoring/{method}``."""
        return self._json("POST", f"/scoring/{quote(method, safe='')}", json=self._params(params))

    def scoring_status(self, all_tasks: bool = False) -> Any:
        """``GET /scoring/``; ``None`` when there has been none."""
        try:
            return self._json("GET", "/scoring/", params={"all": str(all_tasks).lower()})
        except NotFound:
            return None

    # ---------------------------------------------------------------- sessions
    def create_session(self, image_path: str | Path, expiry: int = 0) -> str:
        """``PUT /session/``: upload an image once; returns the session ID."""
        image_path = Path(image_path)
        with open(image_path, "rb") as fh:
            result = self._json(
                "PUT", "/session/", params={"expiry": expiry},
                files=[("files", (image_path.name, fh, "application/octet-stream"))],
                timeout=max(self.timeout, 300),
            )
        return result["session_id"]

    def get_session(self, session_id: str) -> dict[str, Any]:
        """``GET /session/{id}`` (raises :class:`NotFound` once expired)."""
        return self._json("GET", f"/session/{quote(session_id, safe='')}")

    def remove_session(self, session_id: str) -> dict[str, Any]:
        """``DELETE /session/{id}``."""
        return self._json("DELETE", f"/session/{quote(session_id, safe='')}")

    # ------------------------------------------------------------- uncertainty
    def download_uncertainty(self, image_id: str, folder: str | Path, method: str = "mc_dropout") -> Path:
        """``GET /uncertainty/{image}?method=``: the voxel-wise uncertainty volume (NIfTI) saved in ``folder``."""
        response = self._request(
            "GET", f"/uncertainty/{quote(image_id, safe='')}", params={"method": method}, timeout=max(self.timeout, 300)
        )
        return _save_download(response, Path(folder), f"{image_id}.{method}.nii.gz")

    # ---------------------------------------------------------- reconstruction
    def recon(
        self, image_id: str, label: str | Path | None = None, tag: str = "final",
        params: dict | None = None, timeout: float | None = None,
    ) -> bytes:
        """``POST /recon/{image}``: the reconstruction bundle (zip of meshes + report JSON) as bytes.

        Reconstructs the uploaded ``label`` file when given, else the image's stored ``tag`` label.
        """
        files = None
        handle = None
        try:
            if label is not None:
                handle = open(label, "rb")  # noqa: SIM115 - closed below
                files = {"label": (Path(label).name, handle, "application/octet-stream")}
            response = self._request(
                "POST", f"/recon/{quote(image_id, safe='')}", params={"tag": tag}, files=files,
                data={"params": json.dumps(params or {})}, timeout=timeout or max(self.timeout, 600),
            )  # recon options are strict: no client_id
        finally:
            if handle is not None:
                handle.close()
        ctype = response.headers.get("content-type", "")
        if "multipart" in ctype:
            files_out = [p for p in parse_multipart(ctype, response.content) if p.filename]
            if not files_out:
                raise ServerError(response.status_code, "the /recon answer holds no file")
            return files_out[0].data
        if "json" in ctype:
            raise ServerError(response.status_code, f"expected a zip from /recon, got JSON {response.text[:200]!r}")
        return response.content

    # ------------------------------------------------------------------ models
    def download_model(self, model: str, folder: str | Path) -> Path:
        """``GET /model/{model}``: the model's weights file."""
        response = self._request("GET", f"/model/{quote(model, safe='')}", timeout=max(self.timeout, 300))
        return _save_download(response, Path(folder), model)

    def upload_model(self, model: str, path: str | Path) -> dict[str, Any]:
        """``PUT /model/{model}``: replace the model's weights."""
        path = Path(path)
        with open(path, "rb") as fh:
            return self._json(
                "PUT", f"/model/{quote(model, safe='')}", files={"file": (path.name, fh)}, timeout=max(self.timeout, 300)
            )


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason or ""
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI validation errors
        return "; ".join(
            f"{'.'.join(str(x) for x in d.get('loc', []))}: {d.get('msg', '')}" if isinstance(d, dict) else str(d)
            for d in detail
        )
    return str(detail)


def _save_download(response: requests.Response, folder: Path, default_name: str) -> Path:
    name = default_name
    disposition = response.headers.get("content-disposition", "")
    for token in disposition.split(";"):
        key, _, value = token.strip().partition("=")
        if key == "filename" and value:
            name = value.strip('"')
    name = Path(name.replace("\\", "/")).name or default_name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(response.content)
    return path
