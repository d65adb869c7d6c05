"""A datastore backed by a PACS over DICOMweb (QIDO-RS, WADO-RS, STOW-RS via ``dicomweb-client``).

Images are the PACS's CT series (image ID = SeriesInstanceUID); a series is fetched on first use
into a bounded local cache and refetched when the PACS's copy changes (its instance list differs).
Labels are versioned in the local store exactly as in :class:`LocalDatastore` (which this class
extends, so the routers work unchanged) and every saved label is also sent to the PACS as a DICOM
Segmentation referencing the CT images. SEG objects found on the PACS that MedSeg did not write
(e.g. made with another tool) are imported as labels under the ``pacs`` tag.

A SEG that cannot be sent (PACS down) stays queued in ``.medseg/dicomweb-outbox`` and is sent
on the next refresh; the label itself is safe in the local store before the PACS is contacted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pydicom
import requests
import SimpleITK as sitk

from .. import imageio
from ..atomic import atomic_write_bytes
from . import dicom_seg
from .cache import SeriesCache
from .errors import DatastoreError, InvalidUpload, NotFound
from .ids import validate_id
from .local import LabelVersion, LocalDatastore

log = logging.getLogger("medseg.dicomweb")

ANY_TRANSFER_SYNTAX = (("application/dicom", "*"),)  # the PACS sends what it stores (e.g. JPEG 2000)
IMPORT_TAG = "pacs"
IMPORTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS dicomweb_segs (
    sop_uid TEXT PRIMARY KEY,
    image_id TEXT NOT NULL,
    direction TEXT NOT NULL,        -- 'pushed' (written by MedSeg) or 'imported'
    label_seq INTEGER,
    at REAL NOT NULL
);
"""


class PacsUnavailable(DatastoreError):
    """The PACS did not answer (502 to the client)."""

    status = 502


def _tag(ds: dict, keyword: str) -> Any:
    """A value from a DICOM JSON (QIDO) record."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    item = ds.get(f"{tag:08X}", {})
    values = item.get("Value") or []
    if not values:
        return None
    value = values[0]
    if isinstance(value, dict) and "Alphabetic" in value:
        return value["Alphabetic"]
    return value


class DicomWebDatastore(LocalDatastore):
    """CT series of a DICOMweb PACS, labels versioned locally and stored back as DICOM SEG."""

    def __init__(
        self,
        studies: Path,
        url: str,
        cache_bytes: int = 2 << 30,
        refresh_s: float = 30.0,
        import_segs: bool = True,
        name: str = "MedSeg DICOMweb datastore",
        session: requests.Session | None = None,
    ) -> None:
        from dicomweb_client.api import DICOMwebClient

        self.url = url.rstrip("/")
        self.refresh_s = refresh_s
        self.import_segs = import_segs
        self.client = DICOMwebClient(self.url, session=session or requests.Session())
        self.client.set_http_retry_params(retry=True, max_attempts=3, wait_exponential_multiplier=200)
        state = Path(studies).resolve() / ".medseg"
        self.cache = SeriesCache(state / "dicomweb-cache", cache_bytes)
        self.outbox = state / "dicomweb-outbox"
        self._series: dict[str, dict[str, Any]] = {}
        self._checked: dict[str, tuple[float, str]] = {}
        self._refreshed = 0.0
        self._refresh_lock = threading.Lock()
        self._opened = False  # LocalDatastore.__init__ lists the PACS before our own table exists
        super().__init__(studies, name=name, description=f"CT series of the PACS at {self.url}")
        self.index._conn().executescript(IMPORTS_SCHEMA)
        self._opened = True
        self._after_refresh()

    # --------------------------------------------------------------- the PACS
    def _qido(self, what: str, **kwargs: Any) -> list[dict]:
        try:
            return getattr(self.client, what)(**kwargs)
        except requests.RequestException as exc:
            raise PacsUnavailable(f"PACS at {self.url} did not answer: {exc}") from None

    def _discover(self) -> dict[str, str]:
        """CT series on the PACS, as ``{series uid: cache folder relative to the studies root}``."""
        found: dict[str, str] = {}
        series = self._qido("search_for_series", search_filters={"Modality": "CT"}, get_remaining=True)
        for record in series:
            uid = _tag(record, "SeriesInstanceUID")
            try:
                validate_id(uid)
            except DatastoreError:
                log.warning("skipping series with an unusable UID %r", uid)
                continue
            self._series[uid] = {
                "study_uid": _tag(record, "StudyInstanceUID"),
                "series_uid": uid,
                "patient_id": _tag(record, "PatientID"),
                "study_date": _tag(record, "StudyDate"),
                "series_description": _tag(record, "SeriesDescription"),
                "series_number": _tag(record, "SeriesNumber"),
                "instances": _tag(record, "NumberOfSeriesRelatedInstances"),
            }
            found[uid] = self.cache.folder(uid).relative_to(self.root).as_posix()
        return found

    def refresh(self) -> None:
        """Re-list the PACS's CT series (and import new foreign SEGs, send queued SEGs)."""
        with self._refresh_lock:
            super().refresh()
            self._refreshed = time.monotonic()
        if self._opened:
            self._after_refresh()

    def _after_refresh(self) -> None:
        self.flush_outbox()
        if self.import_segs:
            self.import_pacs_segs()

    def _maybe_refresh(self) -> None:
        if time.monotonic() - self._refreshed >= self.refresh_s:
            try:
                self.refresh()
            except PacsUnavailable as exc:
                log.warning("%s; serving the last known list", exc)

    def list_images(self) -> list[str]:
        """IDs (SeriesInstanceUIDs) of the PACS's CT series, re-listed every ``refresh_s`` seconds."""
        self._maybe_refresh()
        return super().list_images()

    def _fingerprint(self, image_id: str) -> str:
        """Hash of the series' SOP instance UIDs on the PACS (checked at most every ``refresh_s``)."""
        checked = self._checked.get(image_id)
        if checked is not None and time.monotonic() - checked[0] < self.refresh_s:
            return checked[1]
        study = self._study_uid(image_id)
        records = self._qido(
            "search_for_instances", study_instance_uid=study, series_instance_uid=image_id, get_remaining=True
        )
        uids = sorted(str(_tag(r, "SOPInstanceUID")) for r in records)
        if not uids:
            raise NotFound(f"series {image_id} has no instances on the PACS")
        digest = hashlib.sha256("\n".join(uids).encode()).hexdigest()
        self._checked[image_id] = (time.monotonic(), digest)
        return digest

    def _study_uid(self, image_id: str) -> str:
        meta = self._series.get(image_id)
        if meta is None:
            self._maybe_refresh()
            meta = self._series.get(image_id)
        if meta is None:
            raise NotFound(f"series {image_id!r} is not on the PACS")
        return meta["study_uid"]

    def image_path(self, image_id: str) -> Path:
        """The cached series folder, fetched (or refetched when the PACS changed) first."""
        self._row(image_id)
        with self.cache.lock(image_id):
            try:
                fingerprint = self._fingerprint(image_id)
            except PacsUnavailable:
                cached = self.cache.get(image_id, None)
                if cached is None:
                    raise
                log.warning("PACS unreachable: serving the cached copy of %s", image_id)
                return cached
            folder = self.cache.get(image_id, fingerprint)
            if folder is None:
                try:
                    datasets = self.client.retrieve_series(
                        self._study_uid(image_id), image_id, media_types=ANY_TRANSFER_SYNTAX
                    )
                except requests.RequestException as exc:
                    raise PacsUnavailable(f"cannot fetch series {image_id} from the PACS: {exc}") from None
                folder = self.cache.put(image_id, fingerprint, datasets)
                self._geometry.pop(image_id, None)
        return folder

    def source_headers(self, image_id: str) -> list[pydicom.Dataset]:
        """Headers (no pixels) of the series' instances, from the cache."""
        folder = self.image_path(image_id)
        return [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(folder.glob("*.dcm"))]

    def get_image_info(self, image_id: str) -> dict[str, Any]:
        """Stored info plus the PACS's study and series description."""
        info = super().get_image_info(image_id)
        info.update({k: v for k, v in self._series.get(image_id, {}).items() if v is not None})
        info["name"] = f"{image_id}.nii.gz"
        info["source"] = "dicomweb"
        return info

    def add_image(self, image_id: str | None, data: bytes, filename: str, info: dict | None = None) -> str:
        """Images come from the PACS; uploading one here is refused."""
        raise InvalidUpload("this datastore serves the PACS's series: send new images to the PACS")

    def remove_image(self, image_id: str) -> None:
        """Images belong to the PACS; removing one here is refused."""
        raise InvalidUpload("this datastore serves the PACS's series: it does not delete them")

    # ----------------------------------------------------------------- labels
    def save_label_image(
        self, image_id: str, tag: str, label: sitk.Image, user: str = "anonymous", info: dict | None = None
    ) -> LabelVersion:
        """Store the version locally first (never lost), then send it to the PACS as a DICOM SEG."""
        version = super().save_label_image(image_id, tag, label, user=user, info=info)
        if (info or {}).get("imported_from"):
            return version
        status = self._push(version, label)
        return dataclasses.replace(version, info={**version.info, "dicom_seg": status})

    def _label_seq(self, version: LabelVersion) -> int:
        return self.index.query(
            "SELECT seq FROM labels WHERE image_id=? AND tag=? AND version=?",
            (version.image_id, version.tag, version.version),
        )[0]["seq"]

    def _record_seg_status(self, version: LabelVersion, status: dict[str, Any]) -> None:
        seq = self._label_seq(version)
        with self.index.transaction() as db:
            info = json.loads(db.execute("SELECT info FROM labels WHERE seq=?", (seq,)).fetchone()[0])
            info["dicom_seg"] = status
            db.execute("UPDATE labels SET info=? WHERE seq=?", (json.dumps(info), seq))
            if status.get("sop_instance_uid"):
                db.execute(
                    "INSERT OR REPLACE INTO dicomweb_segs (sop_uid, image_id, direction, label_seq, at) "
                    "VALUES (?, ?, 'pushed', ?, ?)",
                    (status["sop_instance_uid"], version.image_id, seq, time.time()),
                )

    def _push(self, version: LabelVersion, label: sitk.Image) -> dict[str, Any]:
        if not sitk.GetArrayViewFromImage(label).any():
            status: dict[str, Any] = {"stored": False, "reason": "empty label: no SEG written"}
            self._record_seg_status(version, status)
            return status
        try:
            sources = self.source_headers(version.image_id)
        except PacsUnavailable as exc:
            status = {"stored": False, "error": str(exc)[:300]}
            self._queue(version)
            self._record_seg_status(version, status)
            return status
        seg = dicom_seg.label_to_seg(
            label, sources, creator=version.user, description=f"MedSeg {version.tag} v{version.version}"
        )
        status = {
            "sop_instance_uid": str(seg.SOPInstanceUID),
            "series_instance_uid": str(seg.SeriesInstanceUID),
            "study_instance_uid": str(seg.StudyInstanceUID),
        }
        try:
            self.client.store_instances([seg], study_instance_uid=str(seg.StudyInstanceUID))
            status["stored"] = True
        except (requests.RequestException, RuntimeError) as exc:
            status.update(stored=False, error=str(exc)[:300])
            self._queue(version)
            log.warning("DICOM SEG of %s/%s v%d queued: %s", version.image_id, version.tag, version.version, exc)
        self._record_seg_status(version, status)
        return status

    def _queue(self, version: LabelVersion) -> None:
        entry = {"image_id": version.image_id, "tag": version.tag, "version": version.version}
        name = f"{version.image_id}-{version.tag}-{version.version}.json"
        atomic_write_bytes(self.outbox / name, json.dumps(entry).encode())

    def flush_outbox(self) -> int:
        """Send the SEGs queued while the PACS was unreachable; returns how many went out."""
        sent = 0
        if not self.outbox.exists():
            return 0
        for entry_file in sorted(self.outbox.glob("*.json")):
            entry = json.loads(entry_file.read_text())
            try:
                version = self.get_label(entry["image_id"], entry["tag"], entry["version"])
            except NotFound:
                entry_file.unlink()
                continue
            entry_file.unlink()
            try:
                status = self._push(version, imageio.read_image(version.path))
            except PacsUnavailable:
                self._queue(version)
                break
            if status.get("stored"):
                sent += 1
            else:
                break  # still unreachable (queued again by _push)
        return sent

    # ------------------------------------------------------- foreign SEGs
    def import_pacs_segs(self) -> list[LabelVersion]:
        """Import SEG objects on the PACS that reference a known CT series and were not seen yet."""
        known = {r["sop_uid"] for r in self.index.query("SELECT sop_uid FROM dicomweb_segs")}
        try:
            records = self._qido("search_for_instances", search_filters={"Modality": "SEG"}, get_remaining=True)
        except PacsUnavailable as exc:
            log.warning("%s; SEG import postponed", exc)
            return []
        imported = []
        for record in records:
            sop = _tag(record, "SOPInstanceUID")
            if sop in known:
                continue
            try:
                imported.append(self._import_one(_tag(record, "StudyInstanceUID"), _tag(record, "SeriesInstanceUID"), sop))
            except (DatastoreError, imageio.ImageError, ValueError, AttributeError) as exc:
                log.warning("DICOM SEG %s not imported: %s", sop, exc)
                self._mark_seen(sop, "", "unusable", None)
        return imported

    def _mark_seen(self, sop: str, image_id: str, direction: str, seq: int | None) -> None:
        with self.index.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO dicomweb_segs (sop_uid, image_id, direction, label_seq, at) VALUES (?, ?, ?, ?, ?)",
                (sop, image_id, direction, seq, time.time()),
            )

    def _import_one(self, study: str, series: str, sop: str) -> LabelVersion:
        try:
            ds = self.client.retrieve_instance(study, series, sop, media_types=ANY_TRANSFER_SYNTAX)
        except requests.RequestException as exc:
            raise PacsUnavailable(f"cannot fetch SEG {sop}: {exc}") from None
        refs = ds.get("ReferencedSeriesSequence") or []
        image_id = str(refs[0].SeriesInstanceUID) if refs else ""
        if not image_id or not self.has_image(image_id):
            raise NotFound(f"SEG {sop} references series {image_id!r}, which is not a CT series of the PACS")
        label = dicom_seg.seg_to_label(ds, self.reference(image_id), self.source_headers(image_id))
        creator = str(ds.get("ContentCreatorName") or "") or "pacs"
        info = {
            "imported_from": {"sop_instance_uid": sop, "series_instance_uid": series,
                              "manufacturer": str(ds.get("Manufacturer") or ""),
                              "content_label": str(ds.get("ContentLabel") or "")},
        }
        version = super().save_label_image(image_id, IMPORT_TAG, label, user=creator, info=info)
        self._mark_seen(sop, image_id, "imported", self._label_seq(version))
        log.info("imported DICOM SEG %s as %s/%s v%d", sop, image_id, IMPORT_TAG, version.version)
        return version
