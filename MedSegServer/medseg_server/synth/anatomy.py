"""Body and organ shapes of the phantom: the tissue map around the liver, and the liver itself.

All lengths are millimetres of the reference anatomy multiplied by ``layout.s`` (the grid
scale), positions are LPS relative to the volume centre (right = -x, anterior = -y,
superior = +z). Everything is computed with broadcast numpy expressions on bounding boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import Grid, Slices, ellipsoid_box, ellipsoid_q, rotation, upsample_linear
from .intensity import Tissue, smooth_noise


@dataclass
class Ellipsoid:
    """A rotated ellipsoid (x, y, z centre and semi-axes, mm)."""

    centre: np.ndarray
    semi: np.ndarray
    rot: np.ndarray = field(default_factory=lambda: np.eye(3))

    def q(self, zyx: tuple[np.ndarray, np.ndarray, np.ndarray], pad: float = 0.0) -> np.ndarray:
        """Normalised squared radius (< 1 inside) of the ellipsoid grown by ``pad`` mm."""
        return ellipsoid_q(zyx, self.centre, self.semi + pad, self.rot)

    def half_extent(self) -> np.ndarray:
        """Half size (x, y, z) of the axis-aligned box around the ellipsoid."""
        return np.sqrt(((self.rot * self.semi[None, :]) ** 2).sum(axis=1))


@dataclass
class Layout:
    """Randomised positions and sizes of the body parts of one phantom."""

    s: float
    body_semi: tuple[float, float]
    fat: float
    wall: float
    vb_y: float
    ivc_xy: tuple[float, float]
    ivc_r: float
    aorta_xy: tuple[float, float]
    aorta_r: float
    liver_top: float
    lobes: list[Ellipsoid]
    deform: list[tuple[np.ndarray, np.ndarray, float, float]]
    hilum: np.ndarray
    rpv_target: np.ndarray
    lpv_target: np.ndarray
    hv_targets: dict[str, np.ndarray]
    kidneys: list[Ellipsoid]
    spleen: Ellipsoid
    stomach: Ellipsoid
    heart: Ellipsoid
    gallbladder: Ellipsoid | None


def sample_layout(rng: np.random.Generator, s: float) -> Layout:
    """Draw the body layout for scale ``s``."""

    def u(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))

    def v(*xyz: float) -> np.ndarray:
        return np.array(xyz, float) * s

    ax, ay = u(150, 172) * s, u(112, 128) * s
    vb_y = ay - u(60, 66) * s
    ivc_xy = (u(-25, -19) * s, vb_y - u(28, 32) * s)
    ivc_r = u(10, 12.5) * s
    liver_top = u(78, 92) * s
    shift = v(u(-6, 6), u(-5, 5), 0)
    lz = liver_top - 85 * s  # vertical offset of the liver relative to the design
    lobes = [
        # upper right lobe (dome), inferior right lobe tip, left lobe, caudate lobe, medial bridge
        Ellipsoid(
            v(-72, 0, 25) + shift + [0, 0, lz], v(u(66, 76), u(80, 90), u(58, 64)), rotation(rz=u(-0.1, 0.1))
        ),
        Ellipsoid(
            v(-92, 18, -28) + shift + [0, 0, lz],
            v(u(36, 46), u(45, 58), u(48, 62)),
            rotation(ry=u(-0.2, 0.1)),
        ),
        Ellipsoid(
            v(u(24, 36), -40, 30) + shift + [0, 0, lz],
            v(u(55, 70), u(30, 40), u(34, 42)),
            rotation(rx=u(-0.1, 0.15), ry=u(0.15, 0.35), rz=u(-0.35, -0.1)),
        ),
        Ellipsoid(v(-6, 16, 28) + shift + [0, 0, lz], v(20, 18, 34)),
        # upper medial part joining both lobes in front of and beside the IVC
        Ellipsoid(
            v(-8, -4, 42) + shift + [0, 0, lz], v(u(40, 48), u(36, 42), u(28, 34)), rotation(rz=u(-0.2, 0.2))
        ),
    ]
    deform = []
    for _ in range(6):
        k = rng.normal(size=3)
        e = rng.normal(size=3)
        deform.append(
            (k / np.linalg.norm(k), e / np.linalg.norm(e), 2 * np.pi / (u(90, 220) * s), u(0, 2 * np.pi))
        )
    amp = u(4, 8) * s
    deform = [(k, e * amp / np.sqrt(3), w, p) for k, e, w, p in deform]
    hilum = np.array([ivc_xy[0] - u(8, 14) * s, ivc_xy[1] - ivc_r - u(17, 21) * s, lz + u(-6, 4) * s])
    gallbladder = None
    if rng.uniform() < 0.85:
        gallbladder = Ellipsoid(
            v(-42, -52, -22) + shift + [0, 0, lz],
            v(u(12, 16), u(12, 16), u(26, 36)),
            rotation(rx=u(0.3, 0.6), ry=0.3),
        )
    return Layout(
        s=s,
        body_semi=(ax, ay),
        fat=u(8, 26) * s,
        wall=u(8, 12) * s,
        vb_y=vb_y,
        ivc_xy=ivc_xy,
        ivc_r=ivc_r,
        aorta_xy=(u(14, 20) * s, vb_y - u(26, 30) * s),
        aorta_r=u(9, 12) * s,
        liver_top=liver_top,
        lobes=lobes,
        deform=deform,
        hilum=hilum,
        rpv_target=v(-95, 12, -15) + shift + [0, 0, lz],
        lpv_target=v(45, -45, 30) + shift + [0, 0, lz],
        hv_targets={
            "right_hepatic_vein": v(-110, 5, 0) + shift + [0, 0, lz],
            "middle_hepatic_vein": v(-35, -70, -5) + shift + [0, 0, lz],
            "left_hepatic_vein": v(40, -50, 35) + shift + [0, 0, lz],
        },
        kidneys=[
            Ellipsoid(
                v(-66, 0, 0) + [0, vb_y + 6 * s, lz - u(120, 135) * s],
                v(26, 22, 50),
                rotation(rz=0.5, ry=-0.15),
            ),
            Ellipsoid(
                v(66, 0, 0) + [0, vb_y + 6 * s, lz - u(100, 115) * s],
                v(26, 22, 50),
                rotation(rz=-0.5, ry=0.15),
            ),
        ],
        spleen=Ellipsoid(
            v(90, 40, 0) + [0, 0, lz + 25 * s], v(u(22, 28), u(48, 58), u(45, 55)), rotation(rz=0.5)
        ),
        stomach=Ellipsoid(v(55, -25, 25) + [0, 0, lz], v(u(35, 45), u(30, 38), u(38, 50)), rotation(ry=0.3)),
        heart=Ellipsoid(v(20, -20, 0) + [0, 0, liver_top + 58 * s], v(70, 58, 55), rotation(rz=-0.4)),
        gallbladder=gallbladder,
    )


def diaphragm_height(layout: Layout, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """z of the diaphragm (two paraboloid domes) above each (y, x)."""
    s = layout.s
    top = layout.liver_top
    right = top + 5 * s - ((x + 65 * s) ** 2 + (0.8 * (y - 10 * s)) ** 2) / (2 * 95 * s)
    left = top - 8 * s - ((x - 70 * s) ** 2 + (0.8 * (y - 10 * s)) ** 2) / (2 * 95 * s)
    return np.maximum(right, left)


def _superellipse(y: np.ndarray, x: np.ndarray, ax: float, ay: float) -> np.ndarray:
    """Body cross-section measure (< 1 inside); flatter at the back."""
    p = np.where(y > 0, np.float32(2.8), np.float32(2.0))
    return np.abs(x / np.float32(ax)) ** p + np.abs(y / np.float32(ay)) ** p


def build_body(grid: Grid, layout: Layout, rng: np.random.Generator) -> np.ndarray:
    """Tissue map (uint8 :class:`Tissue` codes) of everything but the liver and its vessels."""
    s = layout.s
    z, y, x = grid.coords()
    y2, x2 = y[0], x[0]
    ax, ay = layout.body_semi
    tissue = np.zeros(grid.shape_zyx, np.uint8)
    body = _superellipse(y2, x2, ax, ay) < 1
    muscle = _superellipse(y2, x2, ax - layout.fat, ay - 0.6 * layout.fat) < 1
    cavity = _superellipse(y2, x2, ax - layout.fat - layout.wall, ay - 0.6 * layout.fat - layout.wall) < 1
    tissue[:, body] = Tissue.SUBCUT_FAT
    tissue[:, muscle] = Tissue.MUSCLE
    tissue[:, cavity] = Tissue.VISCERAL_FAT

    # bowel loops and gas in the lower abdominal cavity
    field_ = smooth_noise(rng, grid.shape_zyx, cell=max(2, round(10 * s / min(grid.spacing))), sigma=1.0)
    zd = diaphragm_height(layout, y2, x2)
    below = z < zd[None] - 30 * s
    peritoneal = cavity & (y2 < layout.vb_y - 50 * s)  # keep the retroperitoneum (aorta, IVC) clear
    cav3 = peritoneal[None] & below
    tissue[cav3 & (field_ > 0.2)] = Tissue.BOWEL
    tissue[cav3 & (field_ > 1.6)] = Tissue.GAS

    # lungs and heart above the diaphragm, diaphragm muscle sheet
    above = cavity[None] & (z > zd[None])
    tissue[above] = Tissue.LUNG
    tissue[cavity[None] & (z <= zd[None]) & (z > zd[None] - 4 * s)] = Tissue.MUSCLE
    _paint(tissue, grid, layout.heart, Tissue.HEART, within=above)
    # the IVC enters the right atrium just above the diaphragm
    ivx, ivy = layout.ivc_xy
    atrium = ((x2 - ivx) ** 2 + (y2 - ivy) ** 2) < (layout.ivc_r + 9 * s) ** 2
    z_dia = float(diaphragm_height(layout, np.array(ivy), np.array(ivx)))
    tissue[(z > z_dia - 4 * s) & (z < z_dia + 30 * s) & atrium[None]] = Tissue.HEART

    # spine, canal, posterior elements, paraspinal muscles and psoas
    vb = (x2 / (21 * s)) ** 2 + ((y2 - layout.vb_y) / (17 * s)) ** 2
    canal = (x2 / (9 * s)) ** 2 + ((y2 - layout.vb_y - 27 * s) / (8 * s)) ** 2
    arch = (x2 / (15 * s)) ** 2 + ((y2 - layout.vb_y - 28 * s) / (14 * s)) ** 2
    spinous = (x2 / (5 * s)) ** 2 + ((y2 - layout.vb_y - 50 * s) / (13 * s)) ** 2
    paraspinal = np.minimum(
        ((x2 - 33 * s) / (24 * s)) ** 2 + ((y2 - layout.vb_y - 38 * s) / (19 * s)) ** 2,
        ((x2 + 33 * s) / (24 * s)) ** 2 + ((y2 - layout.vb_y - 38 * s) / (19 * s)) ** 2,
    )
    tissue[:, (paraspinal < 1) & body] = Tissue.MUSCLE
    lz = layout.liver_top - 85 * s
    psoas_r = np.clip((lz - 95 * s - z[:, 0, 0]) * 0.25 + 6 * s, 0, 20 * s)
    psoas_d = np.minimum(np.abs(x2 - 32 * s), np.abs(x2 + 32 * s)) ** 2 + (y2 - layout.vb_y + 4 * s) ** 2
    tissue[(psoas_d[None] < (psoas_r**2)[:, None, None]) & cavity[None]] = Tissue.MUSCLE
    tissue[:, (arch < 1) | (spinous < 1)] = Tissue.BONE_CORTEX
    tissue[:, canal < 1] = Tissue.CSF
    tissue[:, vb < 1] = Tissue.BONE_CORTEX
    inner = (x2 / (18.5 * s)) ** 2 + ((y2 - layout.vb_y) / (14.5 * s)) ** 2 < 1
    tissue[:, inner] = Tissue.BONE_CANCELLOUS
    period, phase = 32 * s, float(rng.uniform(0, 32 * s))
    disc = ((z[:, 0, 0] - phase) % period) < 7 * s
    slab = tissue[disc]
    slab[:, vb < 1] = Tissue.DISC
    tissue[disc] = slab

    _paint_ribs(tissue, grid, layout)
    aorta = ((x2 - layout.aorta_xy[0]) ** 2 + (y2 - layout.aorta_xy[1]) ** 2) < layout.aorta_r**2
    tissue[:, aorta] = Tissue.AORTA

    for kidney in layout.kidneys:
        _paint(tissue, grid, kidney, Tissue.KIDNEY)
    _paint(tissue, grid, layout.spleen, Tissue.SPLEEN, within=cavity[None] & (z < zd[None] - 3 * s))
    stomach_within = cavity[None] & (z < zd[None] - 3 * s)
    _paint(tissue, grid, layout.stomach, Tissue.STOMACH_WALL, within=stomach_within)
    inner_st = Ellipsoid(layout.stomach.centre, layout.stomach.semi - 4 * s, layout.stomach.rot)
    _paint(tissue, grid, inner_st, Tissue.STOMACH_FLUID, within=stomach_within)
    gas_st = Ellipsoid(
        inner_st.centre + [0, -0.55 * inner_st.semi[1], 0.2 * inner_st.semi[2]],
        inner_st.semi * 0.6,
        inner_st.rot,
    )
    _paint(tissue, grid, gas_st, Tissue.GAS, within=tissue == Tissue.STOMACH_FLUID)
    return tissue


def _paint(
    tissue: np.ndarray, grid: Grid, ell: Ellipsoid, code: Tissue, within: np.ndarray | None = None
) -> None:
    """Set ``code`` inside an ellipsoid (optionally only where ``within``, a broadcastable mask)."""
    sl = ellipsoid_box(grid, ell.centre, ell.semi)
    if sl is None:
        return
    inside = ell.q(grid.coords(sl)) < 1
    if within is not None:
        w = np.broadcast_to(within, tissue.shape)
        inside &= w[sl]
    tissue[sl][inside] = code


def _paint_ribs(tissue: np.ndarray, grid: Grid, layout: Layout) -> None:
    """Lower ribs: bony bands in the body wall descending from the back towards the front."""
    s = layout.s
    z, y, x = grid.coords()
    ax, ay = layout.body_semi
    band = (
        _superellipse(
            y[0], x[0], ax - layout.fat - 0.3 * layout.wall, ay - 0.6 * layout.fat - 0.3 * layout.wall
        )
        < 1
    ) & ~(
        _superellipse(
            y[0], x[0], ax - layout.fat - 0.8 * layout.wall, ay - 0.6 * layout.fat - 0.8 * layout.wall
        )
        < 1
    )
    jj, ii = np.nonzero(band)
    if len(jj) == 0:
        return
    phi = np.arccos(np.clip(y[0, jj, 0] / np.hypot(x[0, 0, ii], y[0, jj, 0]), -1, 1))  # 0 back, pi front
    zc = z[:, 0, 0][:, None]
    for k in range(7):
        z0 = layout.liver_top + (20 - 26 * k) * s
        reach = np.pi * (0.85 - 0.06 * k)
        zk = z0 - 55 * s * (phi / np.pi)
        hit = (np.abs(zc - zk[None]) < 5 * s) & ((phi > 0.2) & (phi < reach))[None]
        kk, n = np.nonzero(hit)
        tissue[kk, jj[n], ii[n]] = Tissue.RIB


def liver_deformation(layout: Layout, zyx: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[np.ndarray]:
    """Smooth random displacement (x, y, z components, mm) at broadcastable coordinates."""
    z, y, x = zyx
    out: list[np.ndarray] = [np.float32(0)] * 3  # type: ignore[list-item]
    for k, e, w, p in layout.deform:
        wave = np.sin(
            np.float32(w) * (np.float32(k[0]) * x + np.float32(k[1]) * y + np.float32(k[2]) * z)
            + np.float32(p)
        )
        out = [o + np.float32(e[a]) * wave for a, o in enumerate(out)]
    return out


def _soft_lobes(layout: Layout, grid: Grid, sl: Slices) -> np.ndarray:
    """Smooth union (soft minimum) of the deformed lobes' normalised radii over ``sl``.

    The field is smooth, so it is evaluated on every other voxel in x and y and interpolated.
    """
    z, y, x = grid.coords(sl)
    zc, yc, xc = z, y[:, ::2], x[:, :, ::2]
    if y.shape[1] % 2 == 0:
        yc = np.concatenate([yc, yc[:, -1:] + np.float32(2 * grid.spacing[1])], axis=1)
    if x.shape[2] % 2 == 0:
        xc = np.concatenate([xc, xc[:, :, -1:] + np.float32(2 * grid.spacing[0])], axis=2)
    d = liver_deformation(layout, (zc, yc, xc))
    warped = (zc + d[2], yc + d[1], xc + d[0])
    k = np.float32(0.12)
    acc = np.zeros(1, np.float32)
    for lobe in layout.lobes:
        acc = acc + np.exp(-lobe.q(warped) / k)
    soft_q = -k * np.log(acc + np.float32(1e-30))
    soft_q = np.broadcast_to(soft_q, (z.shape[0], yc.shape[1], xc.shape[2]))
    return upsample_linear(soft_q, (z.shape[0], y.shape[1], x.shape[2]), (1.0, 2.0, 2.0))


def build_liver(grid: Grid, layout: Layout, tissue: np.ndarray) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Liver mask (full grid, bool) and its bounding slices: soft union of deformed lobes."""
    s = layout.s
    pad = 4 * s + sum(float(np.abs(e).max()) for _, e, _, _ in layout.deform)
    lo = np.min([lb.centre - lb.half_extent() for lb in layout.lobes], axis=0) - pad
    hi = np.max([lb.centre + lb.half_extent() for lb in layout.lobes], axis=0) + pad
    sl = grid.box(lo, hi)
    mask = np.zeros(grid.shape_zyx, bool)
    if sl is None:
        return mask, (slice(0, 0),) * 3
    z, y, x = grid.coords(sl)
    inside = _soft_lobes(layout, grid, sl) < 1
    # carve: stay in the abdominal cavity below the diaphragm, off the spine/aorta/kidneys
    zd = diaphragm_height(layout, y[0], x[0])
    inside &= z < zd[None] - 4 * s
    ax, ay = layout.body_semi
    cav_in = (
        _superellipse(
            y[0], x[0], ax - layout.fat - layout.wall - 2 * s, ay - 0.6 * layout.fat - layout.wall - 2 * s
        )
        < 1
    )
    inside &= cav_in[None]
    vb = (x[0] / (29 * s)) ** 2 + ((y[0] - layout.vb_y) / (25 * s)) ** 2 < 1
    ao = (x[0] - layout.aorta_xy[0]) ** 2 + (y[0] - layout.aorta_xy[1]) ** 2 < (layout.aorta_r + 4 * s) ** 2
    inside &= ~(vb | ao)[None]
    for kidney in layout.kidneys:
        inside &= kidney.q((z, y, x), pad=4 * s) >= 1
    if layout.gallbladder is not None:
        gb = layout.gallbladder.q((z, y, x))
        region = tissue[sl]
        soft = (region == Tissue.VISCERAL_FAT) | (region == Tissue.BOWEL) | (region == Tissue.GAS)
        region[(gb < 1) & (soft | inside)] = Tissue.GALLBLADDER
        inside &= gb >= 1
    mask[sl] = inside
    nz = [np.flatnonzero(inside.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1))]
    if any(len(a) == 0 for a in nz):
        return mask, (slice(0, 0),) * 3
    tight = tuple(
        slice(s_.start + int(a[0]), s_.start + int(a[-1]) + 1) for s_, a in zip(sl, nz, strict=True)
    )
    return mask, tight
