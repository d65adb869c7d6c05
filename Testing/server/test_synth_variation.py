"""Tests of the phantom variation (contrast phase, dose, body size, field of view) of medseg_server.synth."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from medseg_server.synth import LABELS, make_cohort, make_phantom
from medseg_server.synth.variation import PHASES, Variation, sample_variation

SHAPE = (96, 96, 40)
SPACING = (4.0, 4.0, 6.0)


def mean_hu(p, label: str) -> float:
    img, lab = sitk.GetArrayFromImage(p.image), sitk.GetArrayFromImage(p.label)
    return float(img[lab == LABELS[label]].mean())


def test_phase_changes_vessel_contrast():
    standard = make_phantom(4, SHAPE, SPACING)
    plain = make_phantom(4, SHAPE, SPACING, variation=Variation(phase="non_contrast", noise_std=5.0))
    arterial = make_phantom(4, SHAPE, SPACING, variation=Variation(phase="arterial", noise_std=5.0))
    # same anatomy, different enhancement
    assert np.array_equal(sitk.GetArrayFromImage(standard.label), sitk.GetArrayFromImage(plain.label))
    assert mean_hu(standard, "portal_vein") > mean_hu(standard, "liver") + 60
    assert mean_hu(plain, "portal_vein") < mean_hu(plain, "liver")  # unenhanced blood is darker than liver
    assert mean_hu(arterial, "portal_vein") > mean_hu(arterial, "hepatic_veins") + 30
    assert plain.meta["variation"]["phase"] == "non_contrast" and "variation" not in standard.meta


def test_dose_body_size_and_field_of_view():
    base = make_phantom(6, SHAPE, SPACING)
    var = Variation(noise_std=35.0, blur_sigma=1.0, body_scale=0.85, fat_scale=1.6, shift_mm=(0.0, 0.0, 30.0))
    p = make_phantom(6, SHAPE, SPACING, variation=var)
    assert p.meta["noise_std_hu"] == 35.0 and p.meta["blur_sigma_voxels"] == 1.0
    assert p.image.GetOrigin()[2] == pytest.approx(base.image.GetOrigin()[2] + 30.0)
    liver = lambda q: int((sitk.GetArrayFromImage(q.label) == LABELS["liver"]).sum())  # noqa: E731
    assert liver(p) < 0.9 * liver(base)  # smaller patient, liver partly above the field of view
    img = sitk.GetArrayFromImage(p.image).astype(float)
    lab = sitk.GetArrayFromImage(p.label)
    inner = lab == LABELS["liver"]
    assert img[inner].std() > 2 * sitk.GetArrayFromImage(base.image)[sitk.GetArrayFromImage(base.label) == 1].std()


def test_sampled_variation_is_valid_and_seeded():
    draws = [sample_variation(np.random.default_rng(s)) for s in range(40)]
    assert {d.phase for d in draws} == set(PHASES)
    assert all(8.0 <= d.noise_std <= 40.0 and 0.85 <= d.body_scale <= 1.1 for d in draws)
    assert sample_variation(np.random.default_rng(3)) == sample_variation(np.random.default_rng(3))
    with pytest.raises(ValueError):
        Variation(phase="delayed")


def test_varied_cohort_writes_its_variation(tmp_path):
    ids = make_cohort(tmp_path, 2, seed=1, shape=(64, 64, 24), spacing=(6.0, 6.0, 10.0), varied=True)
    metas = [json.loads((tmp_path / "ground_truth" / f"{i}.centerlines.json").read_text())["meta"] for i in ids]
    assert all(m["variation"]["phase"] in PHASES for m in metas)
    again = make_cohort(tmp_path / "again", 2, seed=1, shape=(64, 64, 24), spacing=(6.0, 6.0, 10.0), varied=True)
    assert [json.loads((tmp_path / "again" / "ground_truth" / f"{i}.centerlines.json").read_text())["meta"]
            ["variation"] for i in again] == [m["variation"] for m in metas]
