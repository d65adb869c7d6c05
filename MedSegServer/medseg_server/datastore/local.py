"""The embedded datastore: a studies folder of images plus versioned labels indexed in SQLite.

Layout::

    studies/
      case_001.nii.gz           images (NIfTI, NRRD, MHA) or DICOM series folders
      labels/<tag>/<image>/v0001-<uid>.nii.gz   every submitted label version, never overwritten
      .medseg/index.sqlite      the index (images, label versions: who, when, checksum)
      .medseg/trash/            images and labels removed through the API (kept, not deleted)

A label version exists only once its file is complete on disk (atomic rename) *and* its row
is committed; a crash in between leaves an orphan file that :meth:`LocalDatastore.recover`
removes, never a row pointing at a partial file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from .. import imageio
from ..atomic import atomic_write_bytes, remove_stale_temporaries
from .errors import Conflict, InvalidId, InvalidUpload, NotFound
from .ids import validate_id
from .index import Index

log = logging.getLogger(__name__)

RESERVED_DIRS = {"labels", ".medseg", "ground_truth"}


@dataclass(frozen=True)
class LabelVersion:
    """One stored label version."""

    image_id: str
    tag: str
    version: int
    path: Path
    checksum: str
    size: int
    user: str
    created_at: float
    info: dict

    def as_json(self) -> dict[str, Any]:
        """JSON-friendly description (without the server-side path)."""
        data = asdict(self)
        data.pop("path")
        return data


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class LocalDatastore:
    """Images in a folder, labels versioned per tag, an SQLite index beside them."""

    def __init__(
        self, studies: Path, name: str = "MedSeg local datastore", description: str = "", maintain: bool = True
    ) -> None:
        """Open the store. ``maintain`` runs start-up recovery and re-indexing: only the process that
        owns the store (the server) may do that, never a helper process working beside it, since
        recovery deletes label files whose index row a concurrent save has not committed yet."""
        self.root = Path(studies).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"studies folder {self.root} does not exist")
        self.name = name
        self.description = description or f"Images in {self.root}"
        self.state = self.root / ".medseg"
        self.labels_root = self.root / "labels"
        self.trash = self.state / "trash"
        self.index = Index(self.state / "index.sqlite")
        self._geometry: dict[str, sitk.Image] = {}
        if maintain:
            self.recover()
            self.refresh()

    # ------------------------------------------------------------------ paths
    def _inside(self, path: Path) -> Path:
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise NotFound("path outside the studies folder")
        return resolved

    def _row(self, image_id: str):
        validate_id(image_id)
        rows = self.index.query("SELECT * FROM images WHERE id=? AND deleted_at IS NULL", (image_id,))
        if not rows:
            raise NotFound(f"image {image_id!r} not found")
        return rows[0]

    def image_path(self, image_id: str) -> Path:
        """Path of the image file or DICOM folder."""
        row = self._row(image_id)
        path = self._inside(self.root / row["path"])
        if not path.exists():
            raise NotFound(f"image {image_id!r} is indexed but its file is missing")
        return path

    # ---------------------------------------------------------------- startup
    def recover(self) -> dict[str, int]:
        """Remove what a crashed writer left: temporary files and label files with no index row."""
        temps = remove_stale_temporaries(self.root)
        known = {r["path"] for r in self.index.query("SELECT path FROM labels")}
        orphans = 0
        if self.labels_root.exists():
            for f in self.labels_root.rglob("*"):
                if f.is_file() and f.relative_to(self.root).as_posix() not in known:
                    f.unlink()
                    orphans += 1
        return {"temporary_files": temps, "orphan_labels": orphans}

    def _discover(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith(".") or entry.name in RESERVED_DIRS:
                continue
            if entry.is_file() and imageio.image_suffix(entry.name):
                image_id = imageio.strip_suffix(entry.name)
            elif entry.is_dir() and imageio.is_dicom_series_dir(entry):
                image_id = entry.name
            else:
                continue
            try:
                validate_id(image_id)
            except InvalidId:  # a file name that cannot be an image ID (spaces, Unicode...): not served
                log.warning("skipping %r: not a valid image ID", entry.name)
                continue
            found.setdefault(image_id, entry.name)
        return found

    def refresh(self) -> None:
        """Index images dropped into the studies folder; forget those whose file vanished."""
        found = self._discover()
        rows = {r["id"]: r for r in self.index.query("SELECT id, path, deleted_at FROM images")}
        now = time.time()
        with self.index.transaction() as db:
            for image_id, rel in found.items():
                row = rows.get(image_id)
                if row is None:
                    db.execute(
                        "INSERT INTO images (id, path, added_at) VALUES (?, ?, ?)", (image_id, rel, now)
                    )
                elif row["deleted_at"] is not None or row["path"] != rel:
                    db.execute("UPDATE images SET path=?, deleted_at=NULL WHERE id=?", (rel, image_id))
            for image_id, row in rows.items():
                if image_id not in found and row["deleted_at"] is None:
                    db.execute("UPDATE images SET deleted_at=? WHERE id=?", (now, image_id))

    # ----------------------------------------------------------------- images
    def list_images(self) -> list[str]:
        """IDs of all images, sorted."""
        return [r["id"] for r in self.index.query("SELECT id FROM images WHERE deleted_at IS NULL ORDER BY id")]

    def has_image(self, image_id: str) -> bool:
        """True when the image exists."""
        try:
            self._row(image_id)
        except NotFound:
            return False
        return True

    def get_image_info(self, image_id: str) -> dict[str, Any]:
        """User info merged with geometry."""
        row = self._row(image_id)
        info = json.loads(row["info"])
        path = self.root / row["path"]
        info.setdefault("name", row["path"])
        info["path"] = str(path)
        info["ts"] = row["added_at"]
        if row["checksum"]:
            info["checksum"] = row["checksum"]
        return info

    def set_image_info(self, image_id: str, info: dict[str, Any]) -> dict[str, Any]:
        """Merge ``info`` into the image's stored info."""
        self._row(image_id)
        with self.index.transaction() as db:
            current = json.loads(db.execute("SELECT info FROM images WHERE id=?", (image_id,)).fetchone()[0])
            current.update(info)
            db.execute("UPDATE images SET info=? WHERE id=?", (json.dumps(current), image_id))
        return current

    def read_image(self, image_id: str) -> sitk.Image:
        """The image as a SimpleITK volume."""
        return imageio.read_image(self.image_path(image_id))

    def reference(self, image_id: str) -> sitk.Image:
        """A uint8 image with the geometry of ``image_id`` (cached), read from the header only."""
        ref = self._geometry.get(image_id)
        if ref is None:
            ref = _reference_from(self.image_path(image_id))
            self._geometry[image_id] = ref
        return ref

    def add_image(self, image_id: str | None, data: bytes, filename: str, info: dict | None = None) -> str:
        """Store an uploaded volume as ``<id>.nii.gz``.

        The same bytes uploaded again under the same ID are accepted (idempotent); different
        content under an existing ID is a :class:`Conflict`.
        """
        image_id = validate_id(image_id or imageio.strip_suffix(Path(filename or "").name))
        try:
            image = imageio.read_image_bytes(data, filename)
            imageio.check_finite(image)
        except imageio.ImageError as exc:
            raise InvalidUpload(str(exc)) from None
        checksum = hashlib.sha256(data).hexdigest()
        rows = self.index.query("SELECT * FROM images WHERE id=?", (image_id,))
        if rows and rows[0]["deleted_at"] is None:
            if rows[0]["checksum"] == checksum:
                return image_id
            raise Conflict(f"image {image_id!r} exists already with different content")
        rel = f"{image_id}.nii.gz"
        if (self.root / rel).exists():
            raise Conflict(f"a file named {rel!r} exists already")
        imageio.write_image(image, self.root / rel)
        with self.index.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO images (id, path, checksum, added_at, info) VALUES (?, ?, ?, ?, ?)",
                (image_id, rel, checksum, time.time(), json.dumps(info or {})),
            )
        self._geometry.pop(image_id, None)
        return image_id

    def remove_image(self, image_id: str) -> None:
        """Move the image and all its labels to the trash (recoverable by hand)."""
        path = self.image_path(image_id)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        dest = self.trash / f"{stamp}-{uuid.uuid4().hex[:6]}"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(dest / path.name))
        now = time.time()
        with self.index.transaction() as db:
            db.execute("UPDATE images SET deleted_at=? WHERE id=?", (now, image_id))
            db.execute("UPDATE labels SET deleted_at=? WHERE image_id=? AND deleted_at IS NULL", (now, image_id))
        self._geometry.pop(image_id, None)

    # ----------------------------------------------------------------- labels
    def _conform_label(self, image_id: str, data: bytes, filename: str) -> sitk.Image:
        try:
            label = imageio.read_image_bytes(data, filename)
        except imageio.ImageError as exc:
            raise InvalidUpload(str(exc)) from None
        ref = self.reference(image_id)
        try:
            if not imageio.same_geometry(label, ref):
                label = _paste_on_grid(label, ref)
            return imageio.as_label(label, ref)
        except imageio.ImageError as exc:
            raise InvalidUpload(str(exc)) from None

    def save_label(
        self,
        image_id: str,
        tag: str,
        data: bytes,
        filename: str = "label.nii.gz",
        user: str = "anonymous",
        info: dict | None = None,
    ) -> LabelVersion:
        """Validate and store a new label version; earlier versions are kept."""
        self._row(image_id)
        tag = validate_id(tag, "label tag")
        label = self._conform_label(image_id, data, filename)
        return self.save_label_image(image_id, tag, label, user=user, info=info)

    def save_label_image(
        self, image_id: str, tag: str, label: sitk.Image, user: str = "anonymous", info: dict | None = None
    ) -> LabelVersion:
        """Store an already validated label image as a new version."""
        tag = validate_id(tag, "label tag")
        folder = self.labels_root / tag / image_id
        path = folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.nii.gz"
        payload = imageio.image_to_bytes(label)
        atomic_write_bytes(path, payload)
        checksum = hashlib.sha256(payload).hexdigest()
        rel = path.relative_to(self.root).as_posix()
        now = time.time()
        try:
            with self.index.transaction() as db:
                if db.execute("SELECT 1 FROM images WHERE id=? AND deleted_at IS NULL", (image_id,)).fetchone() is None:
                    raise NotFound(f"image {image_id!r} not found")
                version = db.execute(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM labels WHERE image_id=? AND tag=?", (image_id, tag)
                ).fetchone()[0]
                db.execute(
                    "INSERT INTO labels (image_id, tag, version, path, checksum, size, user, created_at, info) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (image_id, tag, version, rel, checksum, len(payload), user, now, json.dumps(info or {})),
                )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return LabelVersion(image_id, tag, version, path, checksum, len(payload), user, now, info or {})

    def _label_from_row(self, row) -> LabelVersion:
        return LabelVersion(
            row["image_id"], row["tag"], row["version"], self.root / row["path"], row["checksum"],
            row["size"], row["user"], row["created_at"], json.loads(row["info"]),
        )

    def get_label(self, image_id: str, tag: str, version: int | None = None) -> LabelVersion:
        """The latest (or a given) version of a label."""
        validate_id(image_id)
        validate_id(tag, "label tag")
        sql = "SELECT * FROM labels WHERE image_id=? AND tag=? AND deleted_at IS NULL"
        params: tuple = (image_id, tag)
        if version is not None:
            sql += " AND version=?"
            params += (int(version),)
        rows = self.index.query(sql + " ORDER BY version DESC LIMIT 1", params)
        if not rows:
            what = f"version {version} of " if version is not None else ""
            raise NotFound(f"no {what}label {tag!r} for image {image_id!r}")
        return self._label_from_row(rows[0])

    def label_versions(self, image_id: str, tag: str | None = None) -> list[LabelVersion]:
        """All kept versions of the image's labels (optionally of one tag), oldest first."""
        validate_id(image_id)
        sql = "SELECT * FROM labels WHERE image_id=? AND deleted_at IS NULL"
        params: tuple = (image_id,)
        if tag is not None:
            sql += " AND tag=?"
            params += (validate_id(tag, "label tag"),)
        return [self._label_from_row(r) for r in self.index.query(sql + " ORDER BY tag, version", params)]

    def remove_label(self, image_id: str, tag: str) -> int:
        """Hide all versions of a tag from the API (files stay on disk); returns how many."""
        self.get_label(image_id, tag)
        with self.index.transaction() as db:
            cur = db.execute(
                "UPDATE labels SET deleted_at=? WHERE image_id=? AND tag=? AND deleted_at IS NULL",
                (time.time(), image_id, tag),
            )
            return cur.rowcount

    def label_tags(self, image_id: str) -> list[str]:
        """Tags that have at least one version for the image."""
        rows = self.index.query(
            "SELECT DISTINCT tag FROM labels WHERE image_id=? AND deleted_at IS NULL ORDER BY tag", (image_id,)
        )
        return [r["tag"] for r in rows]

    def labelled_images(self, tag: str = "final") -> list[str]:
        """Images with at least one version of ``tag``."""
        rows = self.index.query(
            "SELECT DISTINCT l.image_id FROM labels l JOIN images i ON i.id = l.image_id "
            "WHERE l.tag=? AND l.deleted_at IS NULL AND i.deleted_at IS NULL ORDER BY l.image_id",
            (tag,),
        )
        return [r["image_id"] for r in rows]

    def unlabelled_images(self, tag: str = "final") -> list[str]:
        """Images with no version of ``tag``."""
        done = set(self.labelled_images(tag))
        return [i for i in self.list_images() if i not in done]

    # ------------------------------------------------------------- summaries
    def stats(self) -> dict[str, Any]:
        """Counts as MONAI Label's ``/datastore/?output=stats`` reports them."""
        images = self.list_images()
        tags: dict[str, int] = {}
        for row in self.index.query(
            "SELECT tag, COUNT(DISTINCT image_id) AS n FROM labels WHERE deleted_at IS NULL GROUP BY tag"
        ):
            tags[row["tag"]] = row["n"]
        completed = len(self.labelled_images("final"))
        return {
            "total": len(images),
            "completed": completed,
            "label_tags": tags,
            "train": len(self.train_pairs()),
        }

    def as_json(self) -> dict[str, Any]:
        """The whole datastore, shaped like MONAI Label's ``output=all``."""
        objects: dict[str, Any] = {}
        for image_id in self.list_images():
            row = self._row(image_id)
            labels = {}
            for tag in self.label_tags(image_id):
                latest = self.get_label(image_id, tag)
                labels[tag] = {
                    "ext": ".nii.gz",
                    "info": {**latest.info, **latest.as_json()},
                }
            suffix = imageio.image_suffix(row["path"]) or ""
            objects[image_id] = {
                "image": {"ext": suffix, "info": self.get_image_info(image_id)},
                "labels": labels,
            }
        return {
            "name": self.name,
            "description": self.description,
            "images_dir": str(self.root),
            "labels_dir": str(self.labels_root),
            "objects": objects,
        }

    def train_pairs(self, tag: str = "final") -> list[dict[str, str]]:
        """``[{"image": path, "label": path}]`` for every image with a ``tag`` label."""
        pairs = []
        for image_id in self.labelled_images(tag):
            pairs.append(
                {"image": str(self.image_path(image_id)), "label": str(self.get_label(image_id, tag).path)}
            )
        return pairs

    def verify(self) -> list[str]:
        """Problems found: index rows whose file is missing or whose checksum differs."""
        problems = []
        if not self.index.integrity_ok():
            problems.append("sqlite integrity check failed")
        for row in self.index.query("SELECT * FROM labels"):
            path = self.root / row["path"]
            if not path.exists():
                problems.append(f"missing label file {row['path']}")
            elif sha256_file(path) != row["checksum"]:
                problems.append(f"checksum mismatch {row['path']}")
        return problems


def _paste_on_grid(label: sitk.Image, ref: sitk.Image) -> sitk.Image:
    """Place a label defined on a sub-box (or super-box) of the image grid onto the image grid.

    Slicer's ``.seg.nrrd`` files often cover only the segment's extent; as long as spacing and
    direction match and the offset is whole voxels, nothing is interpolated.
    """
    import numpy as np

    same_axes = np.allclose(label.GetSpacing(), ref.GetSpacing(), rtol=1e-3, atol=1e-3) and np.allclose(
        label.GetDirection(), ref.GetDirection(), atol=1e-3
    )
    if same_axes:
        offset = np.array(ref.TransformPhysicalPointToContinuousIndex(label.GetOrigin()))
        if np.allclose(offset, np.round(offset), atol=1e-2):
            return sitk.Resample(label, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, label.GetPixelID())
    raise imageio.ImageError(
        "label geometry does not match its image: "
        f"label size {label.GetSize()} spacing {tuple(round(s, 4) for s in label.GetSpacing())}, "
        f"image size {ref.GetSize()} spacing {tuple(round(s, 4) for s in ref.GetSpacing())}"
    )


def _reference_from(path: Path) -> sitk.Image:
    """An empty uint8 image with the geometry of the volume at ``path`` (pixels not decoded)."""
    if path.is_dir():
        img = imageio.read_image(path)
        ref = sitk.Image(img.GetSize(), sitk.sitkUInt8)
        ref.CopyInformation(img)
        return ref
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise imageio.ImageError(f"cannot read image header of {path.name!r}") from exc
    dim = reader.GetDimension()
    direction = reader.GetDirection()
    if dim == 4:
        direction = [direction[r * 4 + c] for r in range(3) for c in range(3)]
    ref = sitk.Image(list(reader.GetSize()[:3]), sitk.sitkUInt8)
    ref.SetSpacing(reader.GetSpacing()[:3])
    ref.SetOrigin(reader.GetOrigin()[:3])
    ref.SetDirection(direction)
    return ref
