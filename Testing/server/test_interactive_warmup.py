"""Session open warm-up (feature fields filled in the background) and the blob leak guards."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import SimpleITK as sitk

from interactive_volumes import dice, two_blobs
from medseg_server.interactive import Interaction, InteractiveSession
from medseg_server.interactive.boxes import Box
from medseg_server.interactive.fields import LazyField, smoothed
from medseg_server.interactive.profiles import profile_for
from medseg_server.interactive.propagate import _cut_on_edge
from medseg_server.interactive.warmup import first_level


def test_open_fills_the_fields_of_the_level_a_blob_is_segmented_on():
    img, a, _, _ = two_blobs()
    s = InteractiveSession(img, {"liver": 1})
    assert s.wait_ready(60)
    lev = s.pyramid.levels[first_level(s.pyramid, profile_for("liver"))]
    assert lev.field("smooth").complete() and lev.field("gradient").complete()
    s.interact("liver", Interaction(positive=np.array([[20, 32, 20]])))
    assert s.mask("liver")[a].mean() > 0.95


def test_a_click_during_the_warm_up_gives_the_same_answer_as_after_it():
    img, a, _, _ = two_blobs()
    early = InteractiveSession(img)
    early.interact("tumour", Interaction(positive=np.array([[20, 32, 20]])))  # warm-up still running
    late = InteractiveSession(img)
    late.wait_ready(60)
    late.interact("tumour", Interaction(positive=np.array([[20, 32, 20]])))
    assert dice(early.mask("tumour"), late.mask("tumour")) > 0.99
    early.close()
    assert early.wait_ready(60)  # a closed session's warm-up ends


def test_lazy_field_filled_in_slabs_while_read_matches_one_computation():
    volume = np.random.default_rng(0).normal(0, 50, (70, 40, 36)).astype(np.float32)
    spacing = np.array([2.0, 1.0, 1.0])
    whole = LazyField(volume.shape, smoothed(volume, spacing, 1.5), tile=16)
    reference = whole.get(Box((0, 0, 0), volume.shape)).copy()
    field = LazyField(volume.shape, smoothed(volume, spacing, 1.5), tile=16)
    filler = threading.Thread(target=field.fill)
    filler.start()
    part = field.get(Box((30, 5, 5), (60, 30, 30))).copy()
    filler.join()
    assert field.complete()
    assert np.allclose(field.data, reference, atol=0.5)  # slab halos: recursive filters agree to a fraction of a HU
    assert np.allclose(part, reference[30:60, 5:30, 5:30], atol=0.5)


def test_positive_click_that_would_more_than_double_a_blob_adds_only_what_is_near_it():
    shape = (40, 64, 64)
    z, y, x = np.indices(shape)
    big = (z - 20) ** 2 + (y - 32) ** 2 + (x - 20) ** 2 <= 12**2
    small = (z - 20) ** 2 + (y - 32) ** 2 + (x - 50) ** 2 <= 5**2
    hu = np.full(shape, -100.0)
    hu[big | small] = 60.0
    hu += np.random.default_rng(0).normal(0, 8, shape)
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing((2.0, 2.0, 2.0))
    s = InteractiveSession(img)
    s.interact("ivc", Interaction(positive=np.array([[20, 32, 50]])))
    first = s.mask("ivc").copy()
    assert first[small].mean() > 0.95 and not first[big].any()
    s.interact("ivc", Interaction(positive=np.array([[20, 32, 20]])))  # same intensity, 14 times bigger
    after = s.mask("ivc")
    near = (z - 20) ** 2 + (y - 32) ** 2 + (x - 20) ** 2 <= 6**2  # the small blob's thickness (5 voxels) + 1
    assert after[20, 32, 20] and after[big].sum() > 100  # the click adds around itself ...
    assert not (after & ~first & ~near).any()  # ... and nothing farther
    assert np.array_equal(after[small], first[small])


def test_a_cut_along_an_edge_is_told_from_a_cut_through_a_flat_object():
    grad = np.ones((10, 10, 20), dtype=np.float32)
    removed = np.zeros(grad.shape, dtype=bool)
    removed[:, :, 12:] = True
    kept = ~removed
    assert not _cut_on_edge(grad, removed, kept)  # flat: the removal flooded through the object
    grad[:, :, 11:13] = 5.0
    assert _cut_on_edge(grad, removed, kept)  # the contact runs along a strong edge


_EXIT_DURING_WARMUP = """
import sys
import time
import numpy as np
import SimpleITK as sitk
from medseg_server.interactive import InteractiveSession
from medseg_server.interactive import background
if sys.argv[1] == "no-join":
    import atexit
    atexit.unregister(background._stop_all_at_exit)
img = sitk.GetImageFromArray(np.random.default_rng(0).normal(50, 20, (160, 256, 256)).astype(np.float32))
session = InteractiveSession(img, {"liver": 1})
level, _ = session.warmup.fields[-1]
gradient = session.pyramid.levels[level].field("gradient")
while not session.warmup.ready() and not gradient.data.any():  # exit while ITK computes the gradient
    time.sleep(0.001)
assert not session.warmup.ready()
"""


def _exit_during_warmup(mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _EXIT_DURING_WARMUP, mode], capture_output=True,
                          text=True, timeout=300)


def test_the_process_exits_cleanly_while_a_warm_up_is_running():
    """A daemon thread left inside ITK at interpreter exit aborts the process (exit 134, 'FATAL:
    exception not rethrown'); running work is stopped and joined at exit instead."""
    done = _exit_during_warmup("join")
    assert done.returncode == 0, done.stderr[-500:]
    assert "FATAL" not in done.stderr
