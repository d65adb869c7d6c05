"""A negative click on the part of a vessel trace that ran through a contact into another vessel
removes that part up to the contact (``interactive/neck_split.py``), and nothing where there is
no neck."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medseg_server.interactive import Interaction, InteractiveSession
from medseg_server.interactive.neck_split import beyond_neck

SHAPE = (40, 64, 64)  # z, y, x
SPACING = np.array([2.0, 2.0, 2.0])


def _tube(a: tuple[int, int, int], b: tuple[int, int, int], radius: float) -> np.ndarray:
    """Voxels within ``radius`` (voxels) of the segment a-b."""
    z, y, x = np.indices(SHAPE, dtype=np.float32)
    p, d = np.array(a, dtype=np.float32), np.array(b, dtype=np.float32) - np.array(a, dtype=np.float32)
    t = np.clip(((z - p[0]) * d[0] + (y - p[1]) * d[1] + (x - p[2]) * d[2]) / float(d @ d), 0.0, 1.0)
    return (z - p[0] - t * d[0]) ** 2 + (y - p[1] - t * d[1]) ** 2 + (x - p[2] - t * d[2]) ** 2 <= radius**2


def trunk() -> np.ndarray:
    return _tube((20, 20, 2), (20, 20, 62), 3.5)


def neighbour() -> np.ndarray:
    """Another vessel beside the trunk, 80 mm long, touching it only through a short bridge of
    radius 1 near one end."""
    return _tube((20, 32, 20), (20, 32, 60), 2.5) | (_tube((20, 23, 24), (20, 30, 24), 1.0) & ~trunk())


def _stamp(points: list[tuple[int, int, int]]) -> np.ndarray:
    out = np.zeros(SHAPE, dtype=bool)
    for p in points:
        out[p] = True
    return out


def test_the_negative_side_of_a_narrow_contact_is_removed_whole():
    current = trunk() | neighbour()
    far = beyond_neck(current, _stamp([(20, 20, 10)]), np.array([[20, 32, 50]]), SPACING)
    assert far[neighbour()].mean() > 0.9  # the neighbour, from its far end up to the contact
    assert far[trunk()].mean() < 0.02


def test_an_even_tube_has_no_neck():
    tube = _tube((20, 20, 4), (20, 20, 60), 3.0)
    far = beyond_neck(tube, _stamp([(20, 20, 6), (20, 20, 40)]), np.array([[20, 20, 56]]), SPACING)
    assert not far.any()


def test_a_large_side_is_not_removed():
    """A negative click past a narrow part of the true tree does not take its thick half with it."""
    big = _tube((20, 32, 4), (20, 32, 60), 3.5)
    current = _tube((20, 20, 20), (20, 20, 30), 2.0) | _tube((20, 21, 25), (20, 29, 25), 1.0) | big
    far = beyond_neck(current, _stamp([(20, 20, 22)]), np.array([[20, 32, 50]]), SPACING)
    assert not far.any()


def test_negative_click_removes_the_neighbour_a_first_trace_ran_into():
    hu = np.full(SHAPE, 60.0)
    hu[trunk() | neighbour()] = 180.0
    hu += np.random.default_rng(0).normal(0, 8, SHAPE)
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing(tuple(SPACING))
    s = InteractiveSession(img)
    s.interact("portal_vein", Interaction(positive=np.array([[20, 20, 10]])))
    first = s.mask("portal_vein").copy()
    assert first[trunk()].mean() > 0.9 and first[neighbour()].mean() > 0.8  # the trace ran through the contact
    s.interact("portal_vein", Interaction(negative=np.array([[20, 32, 50]])))  # 50 mm from the contact
    after = s.mask("portal_vein")
    assert after[neighbour()].mean() < 0.1  # one negative click: gone up to the contact (a cut around
    # the click alone left the 45 mm between it and the contact)
    assert after[trunk()].mean() > 0.9
