"""A corpus of bad inputs: each gets a 4xx with a clear message, the server stays up, the store unchanged.

Families: truncated / corrupt NIfTI, NRRD and DICOM; wrong dimensionality; label geometry that does
not match; NaN / Inf; absurd declared sizes (header and Content-Length); gzip bombs; path traversal
and odd Unicode in IDs and tags; malformed JSON params; huge or broken point lists.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sqlite3
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import requests
import SimpleITK as sitk

from medseg_server.imageio import image_to_bytes
from testdata import make_ct

BAD_IDS = [
    "../etc/passwd", "..", ".", "../../case_000", "case_000/../../x", "/etc/passwd", "C:\\Windows\\win.ini",
    "..\\..\\boot.ini", "case_000\x00.nii.gz", "case%00", "%2e%2e%2fetc", "cas e", "case\n000", "case\r\n",
    "ｃａｓｅ＿０００", "case_000\u202e", "c\u0301ase", "案例", "💥", "case_000\u200b", "ca/se", "-leading-dash",
    ".hidden", "_under", "a" * 129, "x" * 5000, "case_000;rm -rf /", "$(reboot)", "`id`", "case_000'--",
    "%ED%A0%80", "%FF%FE", "\t",
]
BAD_TAGS = ["../final", "final/../../x", "fïnal", "final\x00", ".", "a" * 200, "tag with space", "..", "final/", "\\x"]
# Bad inputs the server accepts today, each with the reason; the test fails when one of them starts
# being refused (remove it from here then) or when anything else is accepted.
KNOWN_GAPS: dict[str, str] = {}


@dataclass
class Case:
    """One bad request."""

    name: str
    method: str
    path: str
    kwargs: dict[str, Any] = field(default_factory=dict)


def _nii(image: sitk.Image) -> bytes:
    return image_to_bytes(image, ".nii.gz")


def _raw_nii(image: sitk.Image) -> bytes:
    return image_to_bytes(image, ".nii")


def _nifti_header(dims: tuple[int, ...], datatype: int = 2, bitpix: int = 8, vox_offset: float = 352.0) -> bytes:
    """A NIfTI-1 header (348 bytes + 4 extension bytes) declaring ``dims``."""
    hdr = bytearray(348)
    struct.pack_into("<i", hdr, 0, 348)
    dim = [len(dims), *dims] + [1] * (7 - len(dims))
    struct.pack_into("<8h", hdr, 40, *dim)
    struct.pack_into("<h", hdr, 70, datatype)
    struct.pack_into("<h", hdr, 72, bitpix)
    struct.pack_into("<8f", hdr, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<f", hdr, 108, vox_offset)
    hdr[344:348] = b"n+1\x00"
    return bytes(hdr) + b"\x00\x00\x00\x00"


def _gzip_bomb(header: bytes, zeros: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [comp.compress(header)]
    block = b"\x00" * (1 << 20)
    for _ in range(zeros >> 20):
        out.append(comp.compress(block))
    out.append(comp.flush())
    return b"".join(out)


def _image_variants(label: sitk.Image, real_ct: Path) -> list[tuple[str, str, bytes]]:
    """(name, filename, bytes) of broken files: unusable as an image or a label."""
    good = _nii(label)
    raw = _raw_nii(label)
    out: list[tuple[str, str, bytes]] = []
    for cut in (0, 1, 10, 100, 347, 352, len(good) // 4, len(good) // 2, len(good) - 10, len(good) - 1):
        out.append((f"gz-truncated-{cut}", "l.nii.gz", good[:cut] if cut else b""))
    for cut in (200, 352, 400, len(raw) // 2, len(raw) - 1):
        out.append((f"raw-truncated-{cut}", "l.nii", raw[:cut]))
    rng = np.random.default_rng(0)
    for i in range(6):
        corrupt = bytearray(good)
        pos = rng.integers(10, len(corrupt), size=8)
        for p in pos:
            corrupt[p] ^= 0xFF
        out.append((f"gz-bitflips-{i}", "l.nii.gz", bytes(corrupt)))
    for i, size in enumerate((1, 17, 348, 4096, 100_000)):
        out.append((f"random-{i}", "l.nii.gz", rng.bytes(size)))
        out.append((f"random-raw-{i}", "l.nii", rng.bytes(max(size, 1))))
    out.append(("gzip-of-garbage", "l.nii.gz", gzip.compress(b"not a nifti at all" * 100)))
    out.append(("header-only", "l.nii", _nifti_header((48, 40, 24))))
    out.append(("header-bad-sizeof", "l.nii", b"\x00" * 352 + b"\x01" * 1000))
    out.append(("header-negative-dim", "l.nii", _nifti_header((48, -40, 24)) + b"\x00" * 4096))
    out.append(("header-zero-dim", "l.nii", _nifti_header((48, 0, 24))))
    out.append(("header-10GB", "l.nii", _nifti_header((4096, 4096, 640)) + b"\x00" * 1024))
    out.append(("header-10GB-gz", "l.nii.gz", gzip.compress(_nifti_header((4096, 4096, 640)) + b"\x00" * 1024)))
    out.append(("header-2d", "l.nii", _nifti_header((48, 40)) + b"\x00" * (48 * 40)))
    out.append(("header-5d", "l.nii", _nifti_header((4, 4, 4, 2, 2)) + b"\x00" * 256))
    out.append(("header-bad-datatype", "l.nii", _nifti_header((4, 4, 4), datatype=9999) + b"\x00" * 64))
    out.append(("header-huge-offset", "l.nii", _nifti_header((4, 4, 4), vox_offset=1e12) + b"\x00" * 64))
    out.append(("gzip-bomb-1.6Gvox", "l.nii.gz", _gzip_bomb(_nifti_header((2048, 2048, 400)), 64 << 20)))
    out.append(("gzip-bomb-truncated", "l.nii.gz", _gzip_bomb(_nifti_header((1024, 1024, 512)), 32 << 20)))
    out.append(("zip-archive", "l.nii.gz", _zip_bomb()))
    out.append(("nrrd-bad-header", "l.nrrd", b"NRRD0004\ntype: short\ndimension: 3\nsizes: 10 10\n\n" + b"\x00" * 10))
    out.append(("nrrd-truncated", "l.nrrd", image_to_bytes(label, ".nrrd")[:200]))
    out.append(("nrrd-huge", "l.nrrd", b"NRRD0004\ntype: short\ndimension: 3\nsizes: 100000 100000 100000\nencoding: raw\n\n"))
    out.append(("mha-truncated", "l.mha", image_to_bytes(label, ".mha")[:300]))
    dicom = _dicom_bytes(real_ct)
    out.append(("dicom-as-nifti", "l.nii.gz", dicom))
    out.append(("dicom-file", "l.dcm", dicom))
    out.append(("dicom-truncated", "l.dcm", dicom[:500]))
    out.append(("no-extension", "label", good))
    out.append(("exe-extension", "l.exe", good))
    out.append(("traversal-filename", "../../../etc/l.txt", good))
    return out


def _label_variants(label: sitk.Image) -> list[tuple[str, str, bytes]]:
    """Well-formed volumes that are wrong as a label of ``label``'s image."""
    out: list[tuple[str, str, bytes]] = []
    two_d = sitk.GetImageFromArray(np.zeros((40, 48), np.uint8))
    out.append(("2d-image", "l.nii.gz", _nii(two_d)))
    four_d = sitk.GetImageFromArray(np.zeros((2, 24, 40, 48), np.uint8), isVector=False)
    out.append(("4d-image", "l.nii.gz", _nii(four_d)))
    vec = sitk.GetImageFromArray(np.zeros((24, 40, 48, 3), np.uint8), isVector=True)
    out.append(("rgb-vector", "l.nii.gz", _nii(vec)))
    for name, shape in (("smaller", (24, 40, 47)), ("tiny", (1, 1, 1))):  # sub-boxes are pasted (Slicer's
        other = sitk.GetImageFromArray(np.zeros(shape, np.uint8))       # .seg.nrrd): off-grid ones are refused
        other.SetSpacing(label.GetSpacing())
        other.SetOrigin([o + 0.3 for o in label.GetOrigin()])
        out.append((f"geometry-off-grid-{name}", "l.nii.gz", _nii(other)))
    for name, change in (("spacing", "spacing"), ("half-voxel-shift", "origin"), ("rotated", "direction")):
        moved = sitk.Image(label)
        if change == "spacing":
            moved.SetSpacing([s * 1.5 for s in label.GetSpacing()])
        elif change == "origin":
            moved.SetOrigin([o + 0.5 * s for o, s in zip(label.GetOrigin(), label.GetSpacing(), strict=True)])
        else:
            moved.SetDirection((0, 1, 0, 1, 0, 0, 0, 0, 1))
        out.append((f"geometry-{name}", "l.nii.gz", _nii(moved)))
    for name, value in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf), ("fraction", 0.5), ("negative", -3.0),
                        ("too-large", 1e6)):
        arr = sitk.GetArrayFromImage(label).astype(np.float32)
        arr[3, 3, 3] = value
        bad = sitk.GetImageFromArray(arr)
        bad.CopyInformation(label)
        out.append((f"values-{name}-nii", "l.nii.gz", _nii(bad)))
        out.append((f"values-{name}-mha", "l.mha", image_to_bytes(bad, ".mha")))
        out.append((f"values-{name}-nrrd", "l.nrrd", image_to_bytes(bad, ".nrrd")))
    return out


def _zip_bomb() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.nii", b"\x00" * (16 << 20))
    return buf.getvalue()


def _dicom_bytes(real_ct: Path) -> bytes:
    return sorted((real_ct / "dcmqi" / "ct-3slice").glob("*.dcm"))[0].read_bytes()


def build_corpus(image: sitk.Image, label: sitk.Image, real_ct: Path) -> list[Case]:
    """Every bad request of the corpus (well over 200)."""
    cases: list[Case] = []
    variants = _image_variants(label, real_ct)
    for name, filename, data in variants + _label_variants(label):
        cases.append(Case(f"label:{name}", "PUT", "/datastore/label",
                          {"params": {"image": "case_000", "tag": "final"}, "files": {"label": (filename, data)}}))
    for name, filename, data in variants[::2]:
        cases.append(Case(f"image:{name}", "PUT", "/datastore/image",
                          {"params": {"image": "newcase"}, "files": {"file": (filename, data)}}))
    for name, filename, data in variants[::3]:
        cases.append(Case(f"session:{name}", "PUT", "/session/", {"files": {"files": (filename, data)}}))
        cases.append(Case(f"infer-upload:{name}", "POST", "/infer/threshold_liver",
                          {"files": {"file": (filename, data)}}))
    nan_ct = sitk.GetArrayFromImage(image).astype(np.float32)
    nan_ct[0, 0, 0] = np.nan
    nan_img = sitk.GetImageFromArray(nan_ct)
    nan_img.CopyInformation(image)
    for suffix in (".nii.gz", ".mha", ".nrrd"):
        data, tag = image_to_bytes(nan_img, suffix), suffix.split(".")[1]
        cases.append(Case(f"image:nan-ct-{tag}", "PUT", "/datastore/image",
                          {"params": {"image": "nancase"}, "files": {"file": ("n" + suffix, data)}}))
        cases.append(Case(f"session:nan-ct-{tag}", "PUT", "/session/", {"files": {"files": ("n" + suffix, data)}}))
    good_label = _nii(label)
    for bad in BAD_IDS:
        q = {"image": bad}
        cases += [
            Case(f"id-get-image:{bad!r}", "GET", "/datastore/image", {"params": q}),
            Case(f"id-label-info:{bad!r}", "GET", "/datastore/label/info", {"params": q}),
            Case(f"id-put-label:{bad!r}", "PUT", "/datastore/label",
                 {"params": {**q, "tag": "final"}, "files": {"label": ("l.nii.gz", good_label)}}),
            Case(f"id-put-image:{bad!r}", "PUT", "/datastore/image",
                 {"params": q, "files": {"file": ("x.nii.gz", _nii(image))}}),
            Case(f"id-delete:{bad!r}", "DELETE", "/datastore/image", {"params": {"id": bad}}),
            Case(f"id-infer:{bad!r}", "POST", "/infer/threshold_liver", {"params": q}),
        ]
    for bad in BAD_IDS[:12]:
        cases.append(Case(f"id-lease:{bad!r}", "POST", "/lease/" + requests.utils.quote(bad, safe=""), {}))
    for tag in BAD_TAGS:
        cases.append(Case(f"tag-put:{tag!r}", "PUT", "/datastore/label",
                          {"params": {"image": "case_000", "tag": tag}, "files": {"label": ("l.nii.gz", good_label)}}))
        cases.append(Case(f"tag-get:{tag!r}", "GET", "/datastore/label", {"params": {"image": "case_000", "tag": tag}}))
    bad_json = ["{", "[]", "[1,2]", '"text"', "1", "true", "{'single': 1}", "{\"a\": }", "\x00", "\udcff",
                "[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000, "{" + '"k": 1,' * 10 + "}",
                "NaN", "{\"a\": NaN", "\xff\xfe"]
    for i, text in enumerate(bad_json):
        payload = text.encode("utf-8", "surrogatepass")
        cases += [
            Case(f"json-label-params-{i}", "PUT", "/datastore/label",
                 {"params": {"image": "case_000"}, "data": {"params": payload},
                  "files": {"label": ("l.nii.gz", good_label)}}),
            Case(f"json-infer-params-{i}", "POST", "/infer/threshold_liver",
                 {"params": {"image": "case_000"}, "data": {"params": payload}}),
            Case(f"json-image-info-{i}", "PUT", "/datastore/image/info",
                 {"params": {"image": "case_000"}, "data": {"info": payload}}),
            Case(f"json-activelearning-{i}", "POST", "/activelearning/first",
                 {"data": payload, "headers": {"Content-Type": "application/json"}}),
            Case(f"json-train-{i}", "POST", "/train/threshold_liver",
                 {"data": payload, "headers": {"Content-Type": "application/json"}}),
        ]
    points = {
        "million": [[1, 1, 1]] * 1_000_000,
        "outside": [[10_000, 0, 0]],
        "negative": [[-1, 0, 0]],
        "pairs": [[1, 2]],
        "strings": [["a", "b", "c"]],
        "not-a-list": "1,2,3",
        "dict": {"x": 1},
        "huge-number": [[1e308, 0, 0]],
        "bool": [[True, None, 1]],
    }
    for name, value in points.items():
        params = json.dumps({"foreground": value, "background": []})
        cases.append(Case(f"points-{name}", "POST", "/infer/threshold_liver",
                          {"params": {"image": "case_000"}, "data": {"params": params}}))
    cases.append(Case("points-nan", "POST", "/infer/threshold_liver",
                      {"params": {"image": "case_000"}, "data": {"params": '{"foreground": [[NaN, 1, 1]]}'}}))
    for name, value in (("ext", {"result_extension": "../../x"}), ("dtype", {"result_dtype": "float128"})):
        cases.append(Case(f"infer-{name}", "POST", "/infer/threshold_liver",
                          {"params": {"image": "case_000"}, "data": {"params": json.dumps(value)}}))
    for length in ("10737418240", "-1", "abc", "99999999999999999999999"):
        cases.append(Case(f"content-length-{length}", "PUT", "/datastore/label",
                          {"params": {"image": "case_000"}, "raw_length": length}))
    cases += [
        Case("unknown-model", "POST", "/infer/nope", {"params": {"image": "case_000"}}),
        Case("unknown-strategy", "POST", "/activelearning/nope", {"json": {}}),
        Case("unknown-image-label", "PUT", "/datastore/label",
             {"params": {"image": "no_such_case"}, "files": {"label": ("l.nii.gz", good_label)}}),
        Case("label-version-zero", "GET", "/datastore/label", {"params": {"image": "case_000", "version": 0}}),
        Case("label-version-text", "GET", "/datastore/label", {"params": {"image": "case_000", "version": "x"}}),
        Case("label-version-huge", "GET", "/datastore/label",
             {"params": {"image": "case_000", "version": str(10**30)}}),
        Case("datastore-output", "GET", "/datastore/", {"params": {"output": "../../etc"}}),
        Case("session-unknown", "GET", "/session/" + "a" * 300, {}),
        Case("session-traversal", "GET", "/session/..%2F..%2Fetc", {}),
        Case("session-two-files", "PUT", "/session/",
             {"files": [("files", ("a.nii.gz", _nii(image))), ("files", ("b.nii.gz", _nii(image)))]}),
        Case("session-no-file", "PUT", "/session/", {}),
        Case("label-no-file", "PUT", "/datastore/label", {"params": {"image": "case_000"}}),
        Case("model-put-garbage", "PUT", "/model/threshold_liver", {"files": {"file": ("w.json", b"\x00garbage")}}),
        Case("model-unknown", "GET", "/model/../../etc/passwd", {}),
        Case("lease-ttl", "POST", "/lease/case_000", {"json": {"ttl_s": -5}}),
        Case("lease-ttl-text", "POST", "/lease/case_000", {"json": {"ttl_s": "forever"}}),
        Case("lease-unknown-image", "POST", "/lease/no_such_case", {}),
        Case("override-bad-user", "POST", "/lease/case_000/override", {"json": {"user": "../root"}}),
        Case("session-expiry", "PUT", "/session/", {"params": {"expiry": -1},
                                                    "files": {"files": ("a.nii.gz", _nii(image))}}),
    ]
    return cases


def _send(url: str, case: Case) -> requests.Response:
    kwargs = dict(case.kwargs)
    length = kwargs.pop("raw_length", None)
    if length is not None:
        import http.client

        host, port = url.split("//")[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.putrequest(case.method, case.path + "?image=case_000")
        conn.putheader("Content-Length", length)
        conn.putheader("Content-Type", "multipart/form-data; boundary=xyz")
        conn.endheaders()
        conn.send(b"--xyz--\r\n")
        raw = conn.getresponse()
        body = raw.read()
        resp = requests.Response()
        resp.status_code = raw.status
        resp._content = body
        resp.headers.update(dict(raw.getheaders()))
        conn.close()
        return resp
    return requests.request(case.method, url + case.path, timeout=120, **kwargs)


def snapshot(studies: Path) -> dict[str, Any]:
    """Files (name -> sha256) and index rows that a bad request must not change."""
    files = {}
    for p in sorted(studies.rglob("*")):
        rel = p.relative_to(studies).as_posix()
        if p.is_file() and not rel.startswith(".medseg/"):
            files[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    db = sqlite3.connect(studies / ".medseg" / "index.sqlite")
    rows = {
        "images": db.execute("SELECT id, path, checksum, deleted_at FROM images ORDER BY id").fetchall(),
        "labels": db.execute("SELECT image_id, tag, version, checksum FROM labels ORDER BY seq").fetchall(),
    }
    db.close()
    sessions = sorted(p.name for p in (studies / ".medseg" / "sessions").glob("*")) if (
        studies / ".medseg" / "sessions").exists() else []
    return {"files": files, "rows": rows, "sessions": sessions}


def _clear(resp: requests.Response) -> bool:
    if resp.request is not None and resp.request.method == "HEAD":
        return True
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):  # plain text from the HTTP layer (uvicorn) for broken framing
        return len(resp.text.strip()) >= 8
    if isinstance(detail, list):  # FastAPI's validation errors: a list of {loc, msg}
        return all(isinstance(d, dict) and d.get("msg") for d in detail) and bool(detail)
    return isinstance(detail, str) and len(detail) >= 8


def test_bad_input_corpus(server_factory, studies: Path, shared_real_ct: Path) -> None:
    image, label = make_ct(seed=0)
    live = server_factory(studies, max_upload_mb=64)
    # one good label first, so "unchanged" covers an existing version too
    ok = requests.put(f"{live.url}/datastore/label", params={"image": "case_000"},
                      files={"label": ("l.nii.gz", _nii(label))}, timeout=60)
    assert ok.status_code == 200, ok.text
    before = snapshot(studies)
    corpus = build_corpus(image, label, shared_real_ct)
    assert len(corpus) >= 200
    failures, gaps = [], []
    for case in corpus:
        resp = _send(live.url, case)
        if 400 <= resp.status_code < 500 and _clear(resp):
            continue
        (gaps if case.name in KNOWN_GAPS else failures).append(f"{case.name}: {resp.status_code} {resp.text[:200]!r}")
        if case.name in KNOWN_GAPS:  # undo what a known gap stored, so the rest is checked against "unchanged"
            _undo(live, studies)
    alive = requests.get(f"{live.url}/info/", timeout=30)
    after = snapshot(studies)
    handled = len(corpus) - len(failures) - len(gaps)
    print(f"\nbad inputs: {len(corpus)} tried, {handled} answered 4xx with a clear message, "
          f"{len(gaps)} known gaps accepted, {len(failures)} other failures")
    assert alive.status_code == 200
    assert not failures, "\n".join(failures)
    assert sorted(g.split(":", 2)[0] + ":" + g.split(":", 2)[1] for g in gaps) == sorted(KNOWN_GAPS), gaps
    assert after == before


def _undo(live, studies: Path) -> None:
    """Remove what a known-gap case stored (a new image, a label version, a session)."""
    import shutil

    ds = live.ctx.datastore
    for image_id in ("nancase", "newcase"):
        if ds.has_image(image_id):
            ds.remove_image(image_id)
    db = sqlite3.connect(studies / ".medseg" / "index.sqlite")
    with db:
        db.execute("DELETE FROM labels WHERE image_id='case_000' AND version > 1")
        db.execute("DELETE FROM images WHERE id IN ('nancase', 'newcase')")
        kept = {Path(r[0]).name for r in db.execute("SELECT path FROM labels")}
    db.close()
    for f in (studies / "labels").rglob("*.nii.gz"):
        if f.name not in kept:
            f.unlink()
    shutil.rmtree(studies / ".medseg" / "trash", ignore_errors=True)
    shutil.rmtree(studies / ".medseg" / "sessions", ignore_errors=True)
