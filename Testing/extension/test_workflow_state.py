"""Workflow state from the real server's answers: models, strategies, samples, cohort, training."""

from __future__ import annotations

import pytest
from test_core_imports import MODULE_DIR

from MedSegLib.deps import missing, read_requirements
from MedSegLib.workflow import (
    IncompatibleServer,
    Sample,
    ServerDescription,
    UndoStack,
    WorkflowState,
    cohort_progress,
    train_progress,
)


def test_server_description_from_the_real_info(client):
    server = ServerDescription.from_info(client.info())
    assert "threshold_liver" in server.auto_models()
    assert server.model_labels("threshold_liver") == {"liver": 1}
    assert set(server.auto_models()).isdisjoint(server.interactive_models())
    assert server.default_strategy() in server.strategies
    assert server.model_version("threshold_liver")
    state = WorkflowState()
    state.connect(server)
    assert state.model == server.auto_models()[0]
    assert state.interactive_model == (server.interactive_models() or [""])[0]


def test_strategy_preference_and_list_labels():
    server = ServerDescription.from_info({
        "name": "x", "models": {"m": {"type": "deepedit", "labels": ["liver", "tumour"]}},
        "strategies": {"random": {}, "first": {}, "mc_dropout": {}},
    })
    assert server.default_strategy() == "mc_dropout"
    medseg = ServerDescription.from_info({"name": "x", "models": {}, "strategies": {
        "random": {}, "tta": {}, "mc_dropout": {}, "mc_dropout_dice": {}}})
    assert medseg.default_strategy() == "mc_dropout_dice"
    assert server.model_labels("m") == {"liver": 1, "tumour": 2}
    assert server.auto_models() == [] and server.interactive_models() == ["m"]
    with pytest.raises(IncompatibleServer, match="not a JSON object"):
        ServerDescription.from_info(["models"])


def test_sample_reason_and_score():
    sample = Sample.from_next_sample(
        {"id": "case_7", "name": "case_7.nii.gz", "reason": {"reason": "highest entropy", "score": 0.4213}}, "mc_dropout"
    )
    assert (sample.image_id, sample.reason, sample.score) == ("case_7", "highest entropy", 0.4213)
    assert sample.why == "mc_dropout - highest entropy - score 0.421"
    assert Sample.from_next_sample({"id": "a", "reason": "first in order"}).why == "first in order"


def test_undo_stack_is_bounded_and_a_new_sample_clears_it():
    stack: UndoStack[int] = UndoStack(depth=3)
    for i in range(5):
        stack.push(f"step {i}", i)
    assert len(stack) == 3 and stack.next_label == "step 4"
    assert stack.pop() == ("step 4", 4)
    state = WorkflowState(undo=stack, session_id="s")
    state.set_sample(Sample("b"))
    assert len(state.undo) == 0 and state.session_id == ""
    with pytest.raises(IndexError):
        state.undo.pop()


def test_cohort_progress_counts_final_labels_by_user():
    doc = {"objects": {
        "a": {"labels": {"final": {"info": {"user": "ana"}}}},
        "b": {"labels": {"final": {"info": {"client_id": "bo"}}, "original": {}}},
        "c": {"labels": {"original": {"info": {"user": "model"}}}},
        "d": {"labels": {}},
    }}
    cohort = cohort_progress(doc)
    assert (cohort.total, cohort.labelled, cohort.unlabelled) == (4, 2, ["c", "d"])
    assert cohort.by_user == {"ana": 1, "bo": 1} and cohort.fraction == 0.5


def test_train_progress_from_task_records():
    running = {"status": "RUNNING", "request": {"model": "seg"}, "progress": {"epoch": 3, "total_epochs": 12, "loss": 0.51234}}
    progress = train_progress(running)
    assert progress.running and progress.fraction == 0.25
    assert progress.text == "seg, running, epoch 3/12, loss 0.512"
    failed = train_progress([running, {"status": "ERROR", "error": "Traceback...\nValueError: no labels"}])
    assert not failed.running and failed.text.endswith("ValueError: no labels")
    assert train_progress(None).status == "NONE"


def test_requirements_have_bounds_and_are_installed_here(tmp_path):
    requirements = read_requirements(MODULE_DIR / "Resources" / "requirements.txt")
    assert requirements and all(">=" in r for r in requirements)
    assert missing(requirements) == []
    assert missing(["surely-not-installed-medseg-pkg>=1.0", "requests>=999"]) == [
        "surely-not-installed-medseg-pkg>=1.0", "requests>=999",
    ]
