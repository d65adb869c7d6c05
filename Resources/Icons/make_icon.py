"""Draw the MedSeg icon: a liver silhouette with a blue and a purple vessel tree.

Regenerate both copies (extension icon and module icon) with:

    .venv/bin/python Resources/Icons/make_icon.py

The drawing is done at 4x the final size and scaled down for smooth edges.
"""

from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

SIZE = 128
SCALE = 4

REPO = Path(__file__).resolve().parents[2]
OUTPUTS = (
    REPO / "Resources" / "Icons" / "MedSeg.png",
    REPO / "MedSegExtension" / "MedSeg" / "Resources" / "Icons" / "MedSeg.png",
)

LIVER_FILL = (164, 62, 48, 255)
LIVER_EDGE = (104, 32, 26, 255)
LIVER_SHINE = (204, 108, 90, 255)
VESSEL_HALO = (250, 236, 228, 255)
PORTAL_BLUE = (36, 104, 224, 255)
HEPATIC_PURPLE = (142, 68, 204, 255)

# Liver outline in a 128x128 frame, seen from the front: the large right lobe on the
# viewer's left, the left lobe tapering to a tip on the right, a notched lower edge.
# fmt: off
LIVER_OUTLINE = [
    (8, 60), (10, 40), (20, 25), (38, 16), (60, 14), (84, 17), (106, 22),
    (122, 30), (118, 38), (100, 46), (84, 54), (72, 66), (62, 82),
    (52, 98), (40, 108), (26, 108), (14, 96), (8, 80),
]

# Vessel branches as quadratic Bezier curves: (start, control, end, width at 128 px).
# Hepatic veins fan out from the confluence at the top (where they join the IVC);
# the portal vein enters at the hilum below and splits into right and left branches.
HEPATIC_TREE = [
    ((58, 16), (40, 30), (20, 56), 6),   # right hepatic vein
    ((58, 16), (54, 40), (44, 62), 5),   # middle hepatic vein
    ((58, 16), (76, 26), (96, 30), 5),   # left hepatic vein
    ((34, 34), (26, 34), (18, 36), 3),
    ((52, 36), (62, 44), (66, 52), 3),
]
PORTAL_TREE = [
    ((62, 110), (60, 90), (56, 78), 7.5),  # main portal vein
    ((56, 78), (40, 72), (24, 78), 5.5),   # right branch
    ((56, 78), (76, 60), (102, 40), 5.5),  # left branch
    ((36, 74), (30, 86), (26, 96), 3.5),
    ((82, 54), (84, 46), (86, 40), 3),
]
# fmt: on


def _scaled(points, scale):
    return [(x * scale, y * scale) for x, y in points]


def _bezier(p0, p1, p2, steps=32):
    out = []
    for i in range(steps + 1):
        t = i / steps
        a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t**2
        out.append((a * p0[0] + b * p1[0] + c * p2[0], a * p0[1] + b * p1[1] + c * p2[1]))
    return out


def _draw_tree(draw, tree, colour, scale, extra=0.0):
    for p0, p1, p2, width in tree:
        pts = _scaled(_bezier(p0, p1, p2), scale)
        w = round((width + extra) * scale)
        draw.line(pts, fill=colour, width=w, joint="curve")
        # Round the ends so that branches join cleanly.
        r = w / 2
        for x, y in (pts[0], pts[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def make_icon(size: int = SIZE) -> Image.Image:
    scale = SCALE * size / SIZE
    big = round(size * SCALE)
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))

    # Liver body; a blurred mask gives the outline soft, organic corners.
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).polygon(_scaled(LIVER_OUTLINE, scale), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(6 * scale)).point(lambda v: 255 if v > 128 else 0)
    edge = mask.filter(ImageFilter.MaxFilter(2 * round(2.5 * scale) + 1))
    image.paste(Image.new("RGBA", (big, big), LIVER_EDGE), (0, 0), edge)
    image.paste(Image.new("RGBA", (big, big), LIVER_FILL), (0, 0), mask)

    # A soft highlight on the upper right lobe.
    shine = Image.new("L", (big, big), 0)
    ImageDraw.Draw(shine).ellipse(_scaled([(22, 24), (60, 46)], scale), fill=110)
    shine = shine.filter(ImageFilter.GaussianBlur(6 * scale))
    image.paste(Image.new("RGBA", (big, big), LIVER_SHINE), (0, 0), ImageChops.darker(shine, mask))

    # Vessels on top; the trunks run past the outline to show where they leave the liver.
    # A thin pale halo keeps them readable against the liver at small sizes.
    vessels = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(vessels)
    _draw_tree(draw, HEPATIC_TREE, VESSEL_HALO, scale, extra=2.5)
    _draw_tree(draw, HEPATIC_TREE, HEPATIC_PURPLE, scale)
    _draw_tree(draw, PORTAL_TREE, VESSEL_HALO, scale, extra=2.5)
    _draw_tree(draw, PORTAL_TREE, PORTAL_BLUE, scale)
    image.alpha_composite(vessels)

    return image.resize((size, size), Image.LANCZOS)


def main() -> None:
    icon = make_icon()
    for path in OUTPUTS:
        path.parent.mkdir(parents=True, exist_ok=True)
        icon.save(path, optimize=True)
        print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
