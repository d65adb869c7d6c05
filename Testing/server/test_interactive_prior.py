"""The learned model as the interactive engine's prior: trusted classes only, a zone the target
stays in, lifted by a positive click outside it, and the image-only engine whenever the model
has nothing (yet) to say."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from interactive_volumes import two_blobs
from medseg_server.interactive import Interaction, InteractiveSession
from medseg_server.interactive.model_prior import ModelPrior, components_of, trusted_targets

CENTRE_A = (20, 32, 20)
CENTRE_B = (20, 32, 48)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(int(a.sum() + b.sum()), 1)


def _model_answer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """What a model that knows the anatomy answers: A is liver (1), B is the IVC (4)."""
    labels = np.zeros(a.shape, np.uint8)
    labels[a] = 1
    labels[b] = 4
    return labels


def _provider(labels: np.ndarray, trusted: dict[str, int]):
    return lambda image: ModelPrior(lambda: labels, trusted, "test-model v1")


def test_trusted_targets_follow_the_validation_dice_of_the_card() -> None:
    card = {"validation_dice_per_class": {"liver": 0.9, "portal_vein": 0.01, "ivc": 0.8, "tumour": float("nan")}}
    labels = {"liver": 1, "portal_vein": 2, "hepatic_veins": 3, "ivc": 4, "tumour": 5}
    assert trusted_targets(card, labels, 0.8) == {"liver": 1, "ivc": 4}
    assert trusted_targets(card, labels, 0.95) == {}
    assert trusted_targets({}, labels) == {}


def test_components_keep_position_and_drop_specks() -> None:
    mask = np.zeros((20, 30, 40), bool)
    mask[2:8, 5:15, 10:30] = True
    mask[15, 25, 35] = True  # a one-voxel speck
    comps = components_of(mask)
    assert len(comps) == 1
    box, part = comps[0]
    assert box.start == (2, 5, 10) and box.stop == (8, 15, 30) and part.all()
    assert components_of(np.zeros((4, 4, 4), bool)) == []


def test_a_trusted_model_keeps_the_first_click_out_of_the_neighbour() -> None:
    image, a, b, bridge = two_blobs()
    alone = InteractiveSession(image)
    alone.interact("liver", Interaction(positive=np.array([CENTRE_A])))
    assert (alone.mask("liver") & b).sum() > 0.5 * b.sum()  # the image alone leaks over the bridge

    session = InteractiveSession(image, prior_provider=_provider(_model_answer(a, b), {"liver": 1, "ivc": 4}))
    assert session.prior is not None and session.prior.wait(10)
    update = session.interact("liver", Interaction(positive=np.array([CENTRE_A])))
    mask = session.mask("liver")
    assert update.from_model == "test-model v1"
    assert (mask & b).sum() == 0
    assert _dice(mask, a) > 0.9
    assert _dice(mask, a) > _dice(alone.mask("liver"), a) + 0.1

    # a positive click outside the model's zone: the model missed that part, the zone opens around it
    zone_before = int(session.targets["liver"].zone[1].sum())
    session.interact("liver", Interaction(positive=np.array([CENTRE_B])))
    assert (session.mask("liver") & b).sum() > 0.9 * b.sum()
    assert int(session.targets["liver"].zone[1].sum()) > zone_before
    # ... and undo closes it again
    session.undo()
    assert (session.mask("liver") & b).sum() == 0 and int(session.targets["liver"].zone[1].sum()) == zone_before


def test_untrusted_targets_and_clicks_outside_the_answer_use_the_image_alone() -> None:
    image, a, b, _ = two_blobs()
    plain = InteractiveSession(image)
    plain.interact("tumour", Interaction(positive=np.array([CENTRE_A])))
    labels = _model_answer(a, b)
    labels[a] = 5  # the model calls A a tumour, but is not trusted for tumours
    session = InteractiveSession(image, prior_provider=_provider(labels, {"liver": 1}))
    session.prior.wait(10)
    update = session.interact("tumour", Interaction(positive=np.array([CENTRE_A])))
    assert update.from_model is None
    assert np.array_equal(session.mask("tumour"), plain.mask("tumour"))
    # the liver click lands where the model found no liver
    update = session.interact("liver", Interaction(positive=np.array([CENTRE_B])))
    assert update.from_model is None


def test_the_first_click_never_waits_for_a_slow_model_and_a_failing_one_is_harmless() -> None:
    image, a, b, _ = two_blobs()
    release = threading.Event()

    def slow() -> np.ndarray:
        release.wait(30)
        return _model_answer(a, b)

    session = InteractiveSession(image, prior_provider=lambda img: ModelPrior(slow, {"liver": 1}, "slow"))
    t0 = time.perf_counter()
    update = session.interact("liver", Interaction(positive=np.array([CENTRE_A])))
    assert time.perf_counter() - t0 < 10
    assert update.from_model is None and not session.prior.ready()
    release.set()
    assert session.prior.wait(10) and session.prior.error is None

    def broken() -> np.ndarray:
        raise RuntimeError("out of memory")

    session = InteractiveSession(image, prior_provider=lambda img: ModelPrior(broken, {"liver": 1}, "broken"))
    assert session.prior.wait(10)
    assert "out of memory" in session.prior.as_json()["error"]
    update = session.interact("liver", Interaction(positive=np.array([CENTRE_A])))
    assert update.from_model is None and session.mask("liver")[CENTRE_A]


def test_starter_weights_start_the_liver_of_an_unseen_phantom(tmp_path: Path, one_torch_thread) -> None:
    """The real path: the shipped auto_seg weights as the prior, on a phantom seed they never saw."""
    import SimpleITK as sitk

    from medseg_server.bench.clicks import next_click
    from medseg_server.interactive.model_prior import auto_seg_prior
    from medseg_server.models.auto_seg import AutoSegModel
    from medseg_server.synth import make_phantom

    phantom = make_phantom(100, shape=(128, 128, 48), spacing=(3.0, 3.0, 5.0))
    gt = sitk.GetArrayFromImage(phantom.label) == 1
    model = AutoSegModel(tmp_path / "auto_seg")
    factory = auto_seg_prior(model)
    spacing = np.array(phantom.image.GetSpacing()[::-1])
    click = np.array([next_click(gt, np.zeros_like(gt), spacing).zyx])
    with_model = InteractiveSession(phantom.image, prior_provider=factory)
    assert with_model.prior is not None and {"liver", "ivc"} <= set(with_model.prior.trusted)
    assert "portal_vein" not in with_model.prior.trusted  # the starter is poor on vessels (model card)
    assert with_model.prior.wait(120) and with_model.prior.error is None
    update = with_model.interact("liver", Interaction(positive=click))
    alone = InteractiveSession(phantom.image)
    alone.interact("liver", Interaction(positive=click))
    assert update.from_model is not None and update.from_model.startswith("auto_seg v")
    assert _dice(with_model.mask("liver"), gt) >= _dice(alone.mask("liver"), gt) - 0.01
    assert _dice(with_model.mask("liver"), gt) > 0.8


@pytest.mark.parametrize("enabled", [True, False])
def test_the_server_session_reports_its_prior(server_factory, studies: Path, enabled: bool) -> None:
    import httpx

    server = server_factory(studies, interactive_prior=enabled)
    image_id = sorted(httpx.get(f"{server.url}/datastore/?output=all", timeout=30).json()["objects"])[0]
    opened = httpx.post(f"{server.url}/interactive/sessions", params={"image": image_id}, timeout=60)
    assert opened.status_code in (200, 201), opened.text
    prior = opened.json()["prior"]
    if not enabled:
        assert prior is None
    else:
        assert prior["source"].startswith("auto_seg v") and "liver" in prior["targets"]
