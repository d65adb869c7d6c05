"""``medseg recon``: surfaces, vessel trees and planning report of a label map, written to a folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recon", help="3D models, vessel centrelines and surgical planning report of a label map")
    p.add_argument("--label", required=True, type=Path, help="label map (NIfTI, NRRD, MHA)")
    p.add_argument("--image", type=Path, help="the CT (optional): the label must have its geometry")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--classes", default="", help="label values, e.g. liver=5,portal_vein=64,ivc=63 (default: MedSeg's table)")
    p.add_argument("--generation", type=int, default=2, help="portal generation of the territories (default 2)")
    p.add_argument("--plane", help="resection plane 'x,y,z,nx,ny,nz' (LPS mm; the normal's side is resected)")
    p.add_argument("--resect-territories", help="territory labels to resect, e.g. 1,3")
    p.add_argument("--formats", default="stl,obj,vtp", help="mesh formats (default stl,obj,vtp)")
    p.add_argument("--separate", action="store_true", help="split portal/hepatic from a common vessel label")
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> dict:
    opts: dict = {"generation": args.generation}
    if args.plane:
        values = [float(v) for v in args.plane.split(",")]
        if len(values) != 6:
            raise ValueError("--plane needs 6 numbers: x,y,z,nx,ny,nz")
        opts["plane"] = {"point": values[:3], "normal": values[3:]}
    if args.resect_territories:
        opts["resect_territories"] = [int(v) for v in args.resect_territories.split(",")]
    if args.separate:
        opts["separate"] = True
    return opts


def run(args: argparse.Namespace) -> int:
    from . import imageio
    from .labels import parse_classes
    from .recon import reconstruct, write_outputs

    classes = parse_classes(args.classes) if args.classes else None
    formats = tuple(f.strip().lower() for f in args.formats.split(",") if f.strip())
    label = imageio.read_image(args.label)
    image = imageio.read_image(args.image) if args.image else None
    rec = reconstruct(label, image, classes, options_from_args(args))
    files = write_outputs(rec, args.out, formats=formats)
    summary = {"out": str(args.out), "files": len(files), "volumes_ml": rec.report.get("volumes_ml"),
               "resection": rec.report.get("resection"), "warnings": rec.warnings}
    print(json.dumps(summary, indent=1))
    return 0
