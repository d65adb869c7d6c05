"""``medseg bench interactive``: simulated clicks on the interactive engine vs Slicer's GrowCut.

For every case and class: a fresh session (its opening timed), then up to ``--clicks``
interactions chosen by the click protocol (:mod:`.clicks`) from the engine's own errors; Dice
after each, NoC@80/85/90, latency p50/p95 and the peak memory of the process. With
``--baseline growcut`` GrowCut gets exactly the same clicks as seeds (see :mod:`.growcut`)
and the ratios are printed. With ``--one-session`` a case's classes are annotated one after the
other in one session, as a radiologist does: finished segments are neighbours the next class
cannot take voxels from. Each class also gets its threshold ceiling (:mod:`.ceiling`): how far
one intensity threshold near the truth separates it, to read NoC@90 against.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..atomic import atomic_write_bytes
from ..interactive import Interaction, InteractiveSession, PriorProvider
from ..interactive.boxes import Box
from ..labels import parse_classes
from .ceiling import threshold_ceiling
from .clicks import dice, first_box, next_click, noc

THRESHOLDS = (0.80, 0.85, 0.90)


def register_bench(sub: argparse._SubParsersAction) -> None:
    """Add ``bench interactive``."""
    p = sub.add_parser("interactive", help="click-protocol benchmark of the interactive engine (vs GrowCut)")
    add_case_arguments(p, default_seed=0)
    p.add_argument("--baseline", choices=["none", "growcut"], default="none")
    p.add_argument("--save-masks", type=Path, help="write the final masks here")
    p.add_argument("--one-session", action="store_true",
                   help="annotate a case's classes one after the other in one session (finished ones are neighbours)")
    p.add_argument("--out", type=Path, required=True, help="result JSON")
    p.set_defaults(func=run)


def add_case_arguments(p: argparse.ArgumentParser, default_seed: int) -> None:
    """The cases, classes and click-protocol options shared by the click benchmarks."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", type=Path, help="CT volume")
    src.add_argument("--synthetic", type=int, metavar="N", help="use N synthetic phantoms instead")
    p.add_argument("--label", type=Path, help="ground-truth label map of --image")
    p.add_argument("--classes", default="", help="NAME=VALUE,... (default for phantoms: liver, portal_vein, hepatic_veins)")
    p.add_argument("--seed", type=int, default=default_seed, help="first phantom seed")
    p.add_argument("--clicks", type=int, default=20)
    p.add_argument("--box", action="store_true", help="first interaction is the ground-truth bounding box")
    p.add_argument("--resize", default="", help="X,Y,Z: resample the case to this size first (latency tests)")


def bench_all(out_dir: Path) -> int:
    """Default runs for ``medseg bench all``: the real CT (with GrowCut) and three phantoms."""
    real = Path(__file__).resolve().parents[3] / "Resources" / "SampleData" / "totalseg"
    code = 0
    if (real / "example_ct.nii.gz").exists():
        parser = argparse.ArgumentParser()
        register_bench(parser.add_subparsers())
        code = run(parser.parse_args(["interactive", "--image", str(real / "example_ct.nii.gz"), "--label",
                                      str(real / "example_seg_fast_force_split.nii.gz"), "--classes",
                                      "liver=5,portal_vein=64,ivc=63", "--baseline", "growcut",
                                      "--out", str(out_dir / "interactive_real_ct.json")]))
    parser = argparse.ArgumentParser()
    register_bench(parser.add_subparsers())
    return max(code, run(parser.parse_args(["interactive", "--synthetic", "3", "--baseline", "growcut",
                                            "--out", str(out_dir / "interactive_synthetic.json")])))


def _cases(args: argparse.Namespace) -> list[tuple[str, sitk.Image, sitk.Image, dict[str, int]]]:
    if args.synthetic:
        from ..synth import LABELS, make_phantom

        classes = parse_classes(args.classes) if args.classes else {
            k: LABELS[k] for k in ("liver", "portal_vein", "hepatic_veins")}
        out = []
        for i in range(args.synthetic):
            ph = make_phantom(args.seed + i)
            out.append((f"synth_{args.seed + i:03d}", ph.image, ph.label, classes))
        return out
    if args.label is None or not args.classes:
        raise ValueError("--image needs --label and --classes")
    image, label = sitk.ReadImage(str(args.image)), sitk.ReadImage(str(args.label))
    return [(args.image.name.split(".")[0], image, label, parse_classes(args.classes))]


def _resize(image: sitk.Image, label: sitk.Image, size: list[int]) -> tuple[sitk.Image, sitk.Image]:
    spacing = [s * n / m for s, n, m in zip(image.GetSpacing(), image.GetSize(), size, strict=True)]
    ref = sitk.Image(size, sitk.sitkInt16)
    ref.SetOrigin(image.GetOrigin())
    ref.SetSpacing(spacing)
    ref.SetDirection(image.GetDirection())
    img = sitk.Resample(image, ref, sitk.Transform(), sitk.sitkLinear, -1024.0, sitk.sitkInt16)
    lab = sitk.Resample(label, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return img, lab


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def open_session(image: sitk.Image, prior_provider: PriorProvider | None = None
                 ) -> tuple[InteractiveSession, dict[str, float]]:
    """A session on ``image`` with its open times (return, and with the background warm-up done)."""
    t0 = time.perf_counter()
    session = InteractiveSession(image, prior_provider=prior_provider)
    returned_s = time.perf_counter() - t0
    session.wait_ready()  # the background warm-up counts as session open (clicks here come at once)
    return session, {"open_s": time.perf_counter() - t0, "open_return_s": returned_s}


def run_engine(image: sitk.Image, gt: np.ndarray, name: str, clicks: int, box: bool,
               prior_provider: PriorProvider | None = None, session: InteractiveSession | None = None
               ) -> dict[str, Any]:
    """One class on one case with our engine; the clicks it got are returned for the baseline.
    With ``prior_provider``, the model's answer is awaited before the first click. Without
    ``session`` a fresh one is opened (timed) and closed; a given one is left open."""
    spacing = np.array(image.GetSpacing()[::-1])
    opened = session is None
    times: dict[str, float] = {}
    if session is None:
        session, times = open_session(image, prior_provider)
    if session.prior is not None:
        session.prior.wait()
    events: list[dict[str, Any]] = []
    dices, lat = [], []
    pred = np.zeros_like(gt)
    if box:
        b = first_box(gt)
        events.append({"box": [list(b[0]), list(b[1])]})
        t = time.perf_counter()
        session.interact(name, Interaction(box=Box(b[0], b[1])))
        lat.append(time.perf_counter() - t)
        pred = session.mask(name)
        dices.append(dice(pred, gt))
    while len(dices) < clicks:
        c = next_click(gt, pred, spacing)
        if c is None:
            dices.append(1.0)
            continue
        pts = np.array([c.zyx])
        inter = Interaction(positive=pts) if c.positive else Interaction(negative=pts)
        t = time.perf_counter()
        session.interact(name, inter)
        lat.append(time.perf_counter() - t)
        events.append({"zyx": list(c.zyx), "positive": c.positive})
        pred = session.mask(name)
        dices.append(dice(pred, gt))
    if opened:
        session.close()
    return {"dice": dices, "events": events, "latency": lat, **times, "mask": pred,
            "session_mb": session.memory_bytes() / 2**20}


def run_growcut(image: sitk.Image, gt: np.ndarray, events: list[dict[str, Any]], clicks: int) -> dict[str, Any]:
    """GrowCut with the same interaction sequence."""
    from .growcut import GrowCut

    gc = GrowCut(sitk.GetArrayViewFromImage(image))
    dices, lat = [], []
    pred = np.zeros_like(gt)
    for ev in events[:clicks]:
        if "box" in ev:
            gc.add_box(tuple(ev["box"][0]), tuple(ev["box"][1]))
            gc.add_click(tuple((a + b - 1) // 2 for a, b in zip(*ev["box"], strict=True)), True)
        else:
            gc.add_click(tuple(ev["zyx"]), ev["positive"])
        t = time.perf_counter()
        pred = gc.segment()
        lat.append(time.perf_counter() - t)
        dices.append(dice(pred, gt))
    dices += [dices[-1] if dices else 0.0] * (clicks - len(dices))
    return {"dice": dices, "latency": lat, "mask": pred}


def summarise(res: dict[str, Any], clicks: int) -> dict[str, Any]:
    """Dice curve, NoC and latency figures of one run."""
    lat = np.array(res["latency"]) if res["latency"] else np.zeros(1)
    d = res["dice"]
    out = {
        "dice": [round(x, 4) for x in d],
        "dice_at": {str(k): round(d[k - 1], 4) for k in (1, 3, 5, 10, clicks) if k <= len(d)},
        **{f"noc{int(t * 100)}": noc(d, t, clicks) for t in THRESHOLDS},
        "latency_p50_s": round(float(np.percentile(lat, 50)), 4),
        "latency_p95_s": round(float(np.percentile(lat, 95)), 4),
        "latency_max_s": round(float(lat.max()), 4),
    }
    for key in ("open_s", "open_return_s", "session_mb"):
        if key in res:
            out[key] = round(float(res[key]), 3)
    return out


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print a table, write the JSON."""
    results: dict[str, Any] = {"protocol": "max-EDT of the largest 26-connected error component; first = GT centre"
                               + (" after a GT bounding box" if args.box else ""),
                               "clicks": args.clicks, "box": args.box, "baseline": args.baseline,
                               "one_session": args.one_session, "cases": []}
    all_lat: list[float] = []
    for case_id, image, label, classes in _cases(args):
        if args.resize:
            image, label = _resize(image, label, [int(v) for v in args.resize.split(",")])
        lab = sitk.GetArrayViewFromImage(label)
        case = {"case": case_id, "size": list(image.GetSize()), "spacing": list(image.GetSpacing()), "classes": {}}
        shared = None
        if args.one_session:
            shared, times = open_session(image)
            case["open_s"] = round(times["open_s"], 3)
        for name, value in classes.items():
            gt = lab == value
            if not gt.any():
                print(f"{case_id} {name}: no voxel with value {value}, skipped", file=sys.stderr)
                continue
            eng = run_engine(image, gt, name, args.clicks, args.box, session=shared)
            all_lat += eng["latency"]
            entry = {"engine": summarise(eng, args.clicks), "gt_voxels": int(gt.sum()),
                     "ceiling": threshold_ceiling(sitk.GetArrayViewFromImage(image), gt).as_json()}
            if args.baseline == "growcut":
                gc = run_growcut(image, gt, eng["events"], args.clicks)
                entry["growcut"] = summarise(gc, args.clicks)
                entry["ratios"] = _ratios(entry["engine"], entry["growcut"])
            case["classes"][name] = entry
            _print_row(case_id, name, entry)
            if args.save_masks:
                _save(args.save_masks, case_id, name, eng["mask"], label, "engine")
                if args.baseline == "growcut":
                    _save(args.save_masks, case_id, name, gc["mask"], label, "growcut")
        if shared is not None:
            shared.close()
        results["cases"].append(case)
    lat = np.array(all_lat) if all_lat else np.zeros(1)
    results["overall"] = {"latency_p50_s": round(float(np.percentile(lat, 50)), 4),
                          "latency_p95_s": round(float(np.percentile(lat, 95)), 4),
                          "peak_rss_mb": round(_peak_mb(), 1)}
    print(f"overall: latency p50 {results['overall']['latency_p50_s']} s, p95 {results['overall']['latency_p95_s']} s, "
          f"peak RSS {results['overall']['peak_rss_mb']} MB")
    atomic_write_bytes(args.out, json.dumps(results, indent=1).encode())
    return 0


def _ratios(engine: dict[str, Any], base: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k in ("noc80", "noc85", "noc90"):
        out[f"{k}_engine_over_growcut"] = round(engine[k] / base[k], 3) if base[k] else None
    out["latency_p50_growcut_over_engine"] = (round(base["latency_p50_s"] / engine["latency_p50_s"], 2)
                                              if engine["latency_p50_s"] else None)
    return out


def _print_row(case_id: str, name: str, entry: dict[str, Any]) -> None:
    e = entry["engine"]
    line = (f"{case_id:>14} {name:<14} engine: dice@1/5/10 {e['dice_at'].get('1', 0):.3f}/{e['dice_at'].get('5', 0):.3f}/"
            f"{e['dice_at'].get('10', 0):.3f} NoC80/85/90 {e['noc80']}/{e['noc85']}/{e['noc90']} "
            f"lat p50/p95 {e['latency_p50_s']:.3f}/{e['latency_p95_s']:.3f}s"
            + (f" open {e['open_s']:.2f}s" if "open_s" in e else "")
            + (f" | threshold ceiling {entry['ceiling']['dice']:.3f}" if "ceiling" in entry else ""))
    if "growcut" in entry:
        g = entry["growcut"]
        line += (f" | growcut: dice@5/10 {g['dice_at'].get('5', 0):.3f}/{g['dice_at'].get('10', 0):.3f} "
                 f"NoC80/85/90 {g['noc80']}/{g['noc85']}/{g['noc90']} lat p50 {g['latency_p50_s']:.2f}s"
                 f" | NoC90 ratio {entry['ratios']['noc90_engine_over_growcut']}")
    print(line, flush=True)


def _save(folder: Path, case_id: str, name: str, mask: np.ndarray, reference: sitk.Image, method: str) -> None:
    from ..imageio import write_image

    out = sitk.GetImageFromArray(mask.astype(np.uint8))
    out.CopyInformation(reference)
    folder.mkdir(parents=True, exist_ok=True)
    write_image(out, folder / f"{case_id}_{name}_{method}.nii.gz")
