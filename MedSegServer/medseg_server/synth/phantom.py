"""Assemble one synthetic portal-venous-phase abdominal CT phantom with its ground truth.

Pipeline: body/organ tissue map -> liver (deformed soft union of lobes) -> IVC and portal
trunk -> tumours -> portal and hepatic vein trees grown inside the liver -> label map ->
HU image (lookup, texture, partial-volume blur, noise). See the package docstring for the
label values and the centreline JSON schema.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from medseg_server.labels import LABELS

from .anatomy import Layout, build_body, build_liver, diaphragm_height, sample_layout
from .geometry import Grid
from .intensity import MAX_TUMOURS, N_CODES, Tissue, form_image, sample_hu
from .tumours import Tumour, place_tumours, rasterise_tumour
from .variation import Variation
from .vessels import Branch, Domain, GrowthParams, Seed, TreeGrower, murray_split, paint_tubes

SCHEMA = "medseg.synth.centerlines/1"
TREE_LABELS = {
    "portal_vein": LABELS["portal_vein"],
    "hepatic_veins": LABELS["hepatic_veins"],
    "ivc": LABELS["ivc"],
}
BLUR_SIGMA_VOXELS = 0.7
HV_RADIUS_MM = {"right_hepatic_vein": 5.4, "middle_hepatic_vein": 4.7, "left_hepatic_vein": 4.2}
VESSEL_TISSUE = {"portal_vein": Tissue.PORTAL_VEIN, "hepatic_veins": Tissue.HEPATIC_VEIN, "ivc": Tissue.IVC}


@dataclass
class Phantom:
    """A generated case: HU image (int16), label map (uint8, same geometry), centrelines, metadata."""

    image: sitk.Image
    label: sitk.Image
    centerlines: dict
    meta: dict


def _polyline(points: list[np.ndarray], step: float) -> np.ndarray:
    """Resample a path through ``points`` (quadratic Bezier when 3 points) at about ``step`` mm."""
    if len(points) == 3:
        t = np.linspace(0, 1, 400)[:, None]
        dense = (1 - t) ** 2 * points[0] + 2 * t * (1 - t) * points[1] + t**2 * points[2]
    else:
        dense = np.array(points, float)
    seglen = np.linalg.norm(np.diff(dense, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seglen)])
    n = max(2, int(np.ceil(arc[-1] / step)) + 1)
    at = np.linspace(0, arc[-1], n)
    return np.stack([np.interp(at, arc, dense[:, a]) for a in range(3)], axis=1)


def _make_ivc(grid: Grid, layout: Layout, rng: np.random.Generator, step: float) -> Branch:
    """Vertical IVC from the bottom of the volume up through the diaphragm (towards the heart)."""
    s = layout.s
    z_lo = grid.origin[2]
    dia = float(diaphragm_height(layout, np.array(layout.ivc_xy[1]), np.array(layout.ivc_xy[0])))
    z_hi = min(dia + 12 * s, grid.origin[2] + (grid.size[2] - 1) * grid.spacing[2])
    z = np.arange(z_lo, z_hi + 1e-6, step)
    ph = rng.uniform(0, 2 * np.pi, 3)
    wl = 2 * np.pi / (160 * s)
    x = layout.ivc_xy[0] + 2.0 * s * np.sin(wl * z + ph[0])
    y = layout.ivc_xy[1] + 2.0 * s * np.sin(wl * z + ph[1])
    r = layout.ivc_r * (1 + 0.06 * np.sin(wl * 1.5 * z + ph[2]))
    return Branch(0, None, 0, np.stack([x, y, z], axis=1), r, "ivc")


def _push_inside(domain: Domain, p: np.ndarray, need: float) -> np.ndarray:
    """Move ``p`` up the depth gradient until it is ``need`` mm inside (best effort)."""
    p = p.astype(float).copy()
    for _ in range(40):
        d = domain.depth(p)
        if d >= need:
            break
        p += domain.inward(p) * max(0.5, need - d) * 0.5
    return p


def _axis_point(ivc: Branch, z: float) -> tuple[np.ndarray, float]:
    """IVC centreline point and radius at height ``z``."""
    zs = ivc.points[:, 2]
    p = np.array([np.interp(z, zs, ivc.points[:, a]) for a in range(3)])
    return p, float(np.interp(z, zs, ivc.radii))


def _branch_json(grid: Grid, br: Branch) -> dict:
    return {
        "id": br.id,
        "parent_id": br.parent_id,
        "generation": br.generation,
        "name": br.name,
        "points_mm": np.round(br.points, 3).tolist(),
        "points_ijk": np.round(grid.to_index(br.points), 3).tolist(),
        "radius_mm": np.round(br.radii, 3).tolist(),
    }


def centerlines_json(grid: Grid, trees: dict[str, list[Branch]]) -> dict:
    """The centreline document (see the package docstring for the schema)."""
    return {
        "schema": SCHEMA,
        "coordinate_system": "LPS",
        "units": "mm",
        "index_order": "ijk = continuous (x, y, z) voxel index; numpy array[k, j, i]",
        "size": list(grid.size),
        "spacing": list(grid.spacing),
        "origin": [round(o, 6) for o in grid.origin],
        "direction": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        "labels": dict(TREE_LABELS),
        "trees": {name: [_branch_json(grid, b) for b in trees.get(name, [])] for name in TREE_LABELS},
    }


def _to_sitk(array: np.ndarray, grid: Grid) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(grid.spacing)
    img.SetOrigin(grid.origin)
    img.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return img


@dataclass
class _Fixed:
    """The pre-routed large vessels: IVC, portal trunk and the hepatic vein roots."""

    ivc: Branch
    trunk: Branch
    hilum: np.ndarray
    confluence: np.ndarray
    hv_roots: list[tuple[str, np.ndarray, np.ndarray, float]]  # name, start, target, radius

    def keep_out(self, s: float) -> tuple[np.ndarray, np.ndarray]:
        """Points tumours must stay clear of, with the clearance (mm) for each."""
        roots = [r for _, r, _, _ in self.hv_roots]
        pts = np.concatenate([self.ivc.points, self.trunk.points, [self.hilum, self.confluence], roots])
        clear = np.concatenate(
            [self.ivc.radii + 4 * s, self.trunk.radii + 4 * s, [22 * s, 22 * s], [18 * s] * len(roots)]
        )
        return pts, clear


def _fixed_vessels(
    grid: Grid, layout: Layout, domain: Domain, rng: np.random.Generator, step: float
) -> _Fixed:
    s = layout.s
    ivc = _make_ivc(grid, layout, rng, step)
    r_pv = float(rng.uniform(6.0, 7.5)) * s
    hilum = _push_inside(domain, layout.hilum, r_pv + 2 * s)
    start = hilum + np.array([rng.uniform(16, 24), rng.uniform(-4, 2), -rng.uniform(40, 52)]) * s
    ctrl = 0.5 * (start + hilum) + rng.uniform(-6, 6, 3) * s
    pts = _polyline([start, ctrl, hilum], step)
    trunk = Branch(0, None, 0, pts, np.linspace(r_pv, 0.93 * r_pv, len(pts)), "main_portal_vein")
    conf, r_ivc = _axis_point(ivc, layout.liver_top - float(rng.uniform(20, 30)) * s)
    roots = []
    for name, target in layout.hv_targets.items():
        dxy = (target - conf) * np.array([1.0, 1.0, 0.0])
        root = conf + r_ivc * dxy / np.linalg.norm(dxy)  # on the IVC wall, facing the target
        roots.append((name, root, target, HV_RADIUS_MM[name] * s * float(rng.uniform(0.9, 1.1))))
    return _Fixed(ivc, trunk, hilum, conf, roots)


def _grow_trees(
    fixed: _Fixed, layout: Layout, domain: Domain, params: GrowthParams, rng: np.random.Generator
) -> tuple[dict[str, list[Branch]], dict[str, int]]:
    """Grow the portal tree (from the hilum) and the three hepatic veins (from the IVC) together."""
    s = layout.s
    grower = TreeGrower(domain, params, rng)
    grower.add_fixed("ivc", fixed.ivc)
    grower.add_fixed("portal_vein", fixed.trunk)
    r_right, r_left, _, _ = murray_split(float(fixed.trunk.radii[-1]), float(rng.uniform(0.75, 0.92)))
    for name, r, target, length in (
        ("right_portal_vein", r_right, layout.rpv_target, rng.uniform(24, 34) * s),
        ("left_portal_vein", r_left, layout.lpv_target, rng.uniform(30, 42) * s),
    ):
        seed = Seed("portal_vein", fixed.hilum, target - fixed.hilum, r, 1, parent_id=0, name=name)
        seed.length, seed.target, seed.rank = float(length), target, -1  # level with the hepatic roots
        grower.push(seed)
    for name, root, target, r in fixed.hv_roots:
        seed = Seed("hepatic_veins", root, target - root, r, 0, name=name, target=target)
        seed.length, seed.free_length = float(rng.uniform(34, 46)) * s, 8 * s
        seed.exclude_trees, seed.exclude_roots = ("ivc",), True
        grower.push(seed)
    return grower.run(), dict(sorted(grower.stats.items()))


def _tumour_meta(t: Tumour, voxels: int) -> dict:
    return {
        "kind": t.kind,
        "hu": t.hu,
        "centre_mm": np.round(t.centre, 3).tolist(),
        "semi_axes_mm": np.round(t.semi, 3).tolist(),
        "voxels": voxels,
    }


def make_phantom(
    seed: int,
    shape: tuple[int, int, int] = (256, 256, 96),
    spacing: tuple[float, float, float] = (1.5, 1.5, 2.5),
    *,
    n_tumours: int | None = None,
    variation: Variation | None = None,
) -> Phantom:
    """Generate one phantom; ``shape`` and ``spacing`` are (x, y, z). Same seed -> same case.

    ``n_tumours`` (0-3) sets how many tumours to place (fewer if they do not fit); default random.
    ``variation`` (contrast phase, dose, body size, field of view; see :mod:`.variation`) departs
    from the standard portal-venous scan; ``None`` gives exactly the standard phantom.
    """
    grid = Grid.centred(shape, spacing)
    s = grid.scale
    if variation is not None:
        grid = variation.grid(grid)
        s *= variation.body_scale
    rngs = [np.random.default_rng(c) for c in np.random.SeedSequence(int(seed)).spawn(6)]
    r_layout, r_body, r_vessel, r_tumour, r_grow, r_image = rngs
    step = 0.9 * min(grid.spacing)
    params = GrowthParams(
        step=step, r_min=max(1.0 * s, 0.45 * min(grid.spacing)), clearance=max(1.0, 0.4 * step)
    )

    layout = sample_layout(r_layout, s)
    if variation is not None and variation.fat_scale != 1.0:  # thinner / more obese patient, same organs
        extra = layout.fat * (variation.fat_scale - 1.0)
        layout.fat += extra
        layout.body_semi = (layout.body_semi[0] + extra, layout.body_semi[1] + 0.6 * extra)
    tissue = build_body(grid, layout, r_body)
    liver, lsl = build_liver(grid, layout, tissue)
    domain = Domain(grid, liver, lsl, obstacles=[])
    fixed = _fixed_vessels(grid, layout, domain, r_vessel, step)

    count = int(r_tumour.integers(0, MAX_TUMOURS + 1)) if n_tumours is None else int(n_tumours)
    count = min(max(count, 0), MAX_TUMOURS)
    hu_values = sample_hu(r_image, variation.hu_ranges() if variation is not None else None)
    liver_hu = hu_values[Tissue.LIVER]
    tumours = place_tumours(r_tumour, grid, liver, domain.depth, count, liver_hu, fixed.keep_out(s), s,
                            variation.tumour_hu() if variation is not None else None)
    domain.obstacles = [(t.centre, t.bound + 1.5 * s) for t in tumours]
    trees, growth = _grow_trees(fixed, layout, domain, params, r_grow)

    # label and tissue maps, painted in priority order: liver < tumour < portal < hepatic < IVC
    label = np.zeros(grid.shape_zyx, np.uint8)
    label[liver] = LABELS["liver"]
    tissue[liver] = Tissue.LIVER
    kept: list[tuple[Tumour, int]] = []
    for t in tumours:
        rast = rasterise_tumour(grid, t, liver)
        if rast is not None:
            sl, mask = rast
            label[sl][mask] = LABELS["tumour"]
            tissue[sl][mask] = Tissue.TUMOUR + len(kept)
            kept.append((t, int(mask.sum())))
    for name, value in TREE_LABELS.items():
        paint_tubes(label, grid, trees.get(name, []), value)
        tissue[label == value] = VESSEL_TISSUE[name]

    lut = np.zeros(N_CODES, np.float32)
    for code, value in hu_values.items():
        lut[code] = value
    for n, (t, _) in enumerate(kept):
        lut[Tissue.TUMOUR + n] = t.hu
    noise_std = round(float(r_image.uniform(10.0, 15.0)), 2)
    blur = BLUR_SIGMA_VOXELS
    if variation is not None:
        noise_std, blur = variation.noise_std, variation.blur_sigma
    image = form_image(tissue, lut, r_image, noise_std, blur)

    counts = np.bincount(label.ravel(), minlength=6)
    meta = {
        "generator": "medseg_server.synth",
        "seed": int(seed),
        "size": list(grid.size),
        "spacing": list(grid.spacing),
        "origin": [round(o, 6) for o in grid.origin],
        "anatomy_scale": round(s, 6),
        "n_tumours": len(kept),
        "tumour_kinds": [t.kind for t, _ in kept],
        "tumours": [_tumour_meta(t, n) for t, n in kept],
        "has_gallbladder": layout.gallbladder is not None,
        "noise_std_hu": noise_std,
        "blur_sigma_voxels": blur,
        "hu": {t.name.lower(): v for t, v in hu_values.items()},
        "label_voxels": {name: int(counts[v]) for name, v in LABELS.items()},
        "branches": {name: len(trees.get(name, [])) for name in TREE_LABELS},
        "growth": growth,
    }
    if variation is not None:
        meta["variation"] = variation.as_dict()
    return Phantom(_to_sitk(image, grid), _to_sitk(label, grid), centerlines_json(grid, trees), meta)
