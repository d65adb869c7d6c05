"""The job runner: one worker, callbacks on the draining thread, progress, cancel, errors."""

from __future__ import annotations

import threading
import time

import pytest

from MedSegLib.jobs import JobRunner


@pytest.fixture
def runner():
    r = JobRunner()
    yield r
    r.shutdown()


def test_jobs_run_in_order_on_one_worker_and_callbacks_on_the_main_thread(runner):
    workers, callbacks, results = set(), set(), []
    for i in range(5):
        def work(job, i=i):
            workers.add(threading.current_thread().name)
            return i * i
        runner.submit(f"j{i}", work, on_done=lambda r: (results.append(r), callbacks.add(threading.current_thread().name)))
    assert runner.wait_idle(10)
    assert results == [0, 1, 4, 9, 16]
    assert workers == {"MedSegWorker"}
    assert callbacks == {threading.current_thread().name}


def test_no_callback_before_drain(runner):
    done = []
    job = runner.submit("x", lambda job: 42, on_done=done.append)
    assert job.wait(5)
    assert done == []  # delivered only by drain, i.e. by the QTimer on the GUI thread
    runner.drain()
    assert done == [42]


def test_progress_and_error(runner):
    progress, errors = [], []

    def work(job):
        job.progress(0.5, "half")
        job.progress(2.0, "clamped")
        raise ValueError("bad input")

    runner.submit("p", work, on_error=errors.append, on_progress=lambda f, t: progress.append((f, t)))
    assert runner.wait_idle(5)
    assert progress == [(0.5, "half"), (1.0, "clamped")]
    assert len(errors) == 1 and isinstance(errors[0], ValueError)


def test_cancel_running_and_queued(runner):
    started = threading.Event()
    done, errors = [], []

    def slow(job):
        started.set()
        while True:
            job.check()
            time.sleep(0.01)

    first = runner.submit("slow", slow, on_done=done.append, on_error=errors.append)
    second = runner.submit("never", lambda job: done.append("ran"), on_done=done.append)
    assert started.wait(5)
    assert runner.busy
    runner.cancel_all()
    assert runner.wait_idle(5)
    assert first.state == "cancelled" and second.state == "cancelled"
    assert done == [] and errors == []


def test_result_of_a_job_cancelled_while_it_finishes_is_dropped(runner):
    done = []

    def work(job):
        job.cancel()
        return 1

    runner.submit("c", work, on_done=done.append)
    assert runner.wait_idle(5)
    assert done == []


def test_failing_callback_does_not_stop_others(runner):
    out = []
    runner.submit("a", lambda job: 1, on_done=lambda r: 1 / 0)
    runner.submit("b", lambda job: 2, on_done=out.append)
    assert runner.wait_idle(5)
    assert out == [2]
