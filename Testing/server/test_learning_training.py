"""Learning loop, training side: a step learns, versions are published or refused, DDP path runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from medseg_server.models.bundle import load_bundle, new_bundle, save_bundle
from medseg_server.models.networks import NETWORKS, build_network
from medseg_server.training.seg_loop import load_case, split_cases, train_iterations
from medseg_server.training.versions import UnknownVersion, VersionStore, should_publish
from testdata import make_ct

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SMALL = {"spacing": [2.0, 2.0, 2.0], "patch_size": [16, 32, 32], "roi_size": [16, 32, 32]}


def _write_case(folder: Path, seed: int) -> tuple[Path, Path]:
    image, label = make_ct(seed=seed)
    img_path, lab_path = folder / f"c{seed}.nii.gz", folder / f"c{seed}.label.nii.gz"
    sitk.WriteImage(image, str(img_path))
    sitk.WriteImage(label, str(lab_path))
    return img_path, lab_path


def test_training_steps_change_weights_and_lower_loss(tmp_path: Path) -> None:
    torch.manual_seed(0)
    bundle = new_bundle(SMALL)
    cases = [load_case(*_write_case(tmp_path, s), bundle.config, cache_dir=tmp_path / "cache") for s in (0, 1)]
    assert cases[0].label.max() == 2 and cases[0].image.max() <= 1.0
    before = {k: v.clone() for k, v in bundle.net.state_dict().items()}
    losses = train_iterations(bundle.net, cases, bundle.config, 30, torch.device("cpu"), lr=3e-3, seed=0)
    assert len(losses) == 30
    changed = [k for k, v in bundle.net.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert len(changed) > len(before) // 2
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.05, losses
    # the cache answers the same arrays the second time
    again = load_case(tmp_path / "c0.nii.gz", tmp_path / "c0.label.nii.gz", bundle.config, cache_dir=tmp_path / "cache")
    assert np.array_equal(again.image, cases[0].image) and np.array_equal(again.label, cases[0].label)


def test_bundle_round_trip_and_bad_bundles(tmp_path: Path) -> None:
    bundle = new_bundle(SMALL)
    bundle.card = {"validation_dice": 0.5}
    save_bundle(bundle, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b")
    assert loaded.card == {"validation_dice": 0.5} and loaded.config["patch_size"] == [16, 32, 32]
    for k, v in bundle.net.state_dict().items():
        assert torch.equal(v, loaded.net.state_dict()[k])
    (tmp_path / "b" / "config.json").write_text('{"network": "segresnet_small"}')
    from medseg_server.models import ModelError

    with pytest.raises(ModelError, match="do not fit"):
        load_bundle(tmp_path / "b")
    with pytest.raises(ModelError, match="incomplete"):
        load_bundle(tmp_path / "missing")


@pytest.mark.parametrize("name", ["unet_small", "segresnet_small", "dynunet"])
def test_networks_by_name_answer_one_logit_per_class(name: str) -> None:
    net = build_network(name, 1, 6)
    with torch.no_grad():
        assert net(torch.zeros(1, 1, 16, 32, 32)).shape == (1, 6, 16, 32, 32)
    assert {"unetr", "swinunetr"} <= set(NETWORKS)
    with pytest.raises(ValueError, match="unknown network"):
        build_network("resnet9000", 1, 6)


def test_validation_split_is_stable_as_cases_are_added() -> None:
    ids = [f"case_{i:03d}" for i in range(30)]
    train, val = split_cases(ids[:10])
    assert val and set(train).isdisjoint(val) and set(train) | set(val) == set(ids[:10])
    _, val_more = split_cases(ids)
    assert set(val) <= set(val_more) or len(val) == 1  # a case never moves from validation to training
    assert split_cases(["a", "b"]) == (["a", "b"], ["a", "b"])


def test_publishing_rule() -> None:
    assert should_publish(0.80, 0.80)[0] and should_publish(0.81, 0.80)[0]
    assert not should_publish(0.79, 0.80)[0]
    assert should_publish(0.79, 0.80, tolerance=0.02)[0]
    assert should_publish(0.3, None)[0]  # nothing validated yet
    assert not should_publish(float("nan"), 0.5)[0] and not should_publish(None, 0.5)[0]


def test_version_store_publish_and_rollback(tmp_path: Path) -> None:
    starter = save_bundle(new_bundle(SMALL), tmp_path / "starter")
    store = VersionStore(tmp_path / "store", starter)
    assert store.published() == 0 and store.published_folder() == starter
    v1 = store.add(starter, {"validation_dice": 0.5, "data": [{"image": "a"}]})
    v2 = store.add(starter, {"validation_dice": 0.6})
    assert (v1, v2) == (1, 2) and store.published() == 0
    store.publish(2)
    assert store.published() == 2 and store.published_folder().name == "v0002"
    store.publish(1, "rollback")
    listed = store.list()
    assert [v["version"] for v in listed] == [0, 1, 2]
    assert [v["published"] for v in listed] == [False, True, False]
    assert listed[1]["data"] == [{"image": "a"}] and "created" in listed[1]
    with pytest.raises(UnknownVersion):
        store.publish(7)
    assert store.published() == 1
    assert not list((tmp_path / "store" / "versions").glob(".tmp-*"))


def test_distributed_code_path_single_process_cpu(tmp_path: Path) -> None:
    """``torchrun --nproc_per_node=1`` of the DDP entry point: gloo process group, DDP-wrapped training."""
    for s in range(3):
        _write_case(tmp_path, s)
    out = tmp_path / "ddp_bundle"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
           "-m", "medseg_server.training.distributed", "--images", str(tmp_path), "--label-suffix", ".label.nii.gz",
           "--out", str(out), "--iterations", "4", "--config", '{"spacing": [2.0, 2.0, 2.0], "patch_size": [16, 32, 32], "roi_size": [16, 32, 32]}']
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    bundle = load_bundle(out)
    assert bundle.card["world_size"] == 1 and bundle.card["distributed"] is True
    assert bundle.card["iterations"] == 4 and len(bundle.card["train_cases"]) == 3
