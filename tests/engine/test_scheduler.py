"""The stage scheduler: order, parallelism, and what a failure stops (pure, no storage)."""

from __future__ import annotations

import threading
import time

import pytest

from lorchestra_dagster.engine.scheduler import run_stages

pytestmark = pytest.mark.unit


def _runner(fail: set[str], log: list[str], pause: float = 0.0):
    lock = threading.Lock()

    def run_one(jid: str) -> str:
        with lock:
            log.append(f"start:{jid}")
        time.sleep(pause)
        with lock:
            log.append(f"end:{jid}")
        return "bad" if jid in fail else "ok"

    return run_one


def _outcomes(results) -> dict[str, str]:
    return {r.job_id: ("failed" if r.failed else r.outcome) for r in results}


def test_stages_run_in_order_and_a_stage_waits_for_the_previous():
    log: list[str] = []
    stages = [("ingest", ["a", "b"]), ("canonize", ["c"])]
    results = list(run_stages(stages, {}, _runner(set(), log), lambda r: r == "bad"))
    assert _outcomes(results) == {"a": "ran", "b": "ran", "c": "ran"}
    assert log.index("start:c") > max(log.index("end:a"), log.index("end:b"))


def test_before_stage_runs_between_stages_and_not_for_a_stopped_one():
    log: list[str] = []
    stages = [("ingest", ["a"]), ("formation", ["b"]), ("views", ["c"]), ("project", ["d"])]
    run_one = _runner({"c"}, log)
    list(
        run_stages(
            stages,
            {},
            run_one,
            lambda r: r == "bad",
            stop_on_failure=True,
            before_stage=lambda stage: log.append(f"stage:{stage}"),
        )
    )
    assert log == [
        "stage:ingest", "start:a", "end:a",
        "stage:formation", "start:b", "end:b",
        "stage:views", "start:c", "end:c",
    ]  # fmt: skip


def test_independent_jobs_of_a_stage_overlap():
    log: list[str] = []
    stages = [("ingest", ["a", "b"])]
    list(run_stages(stages, {}, _runner(set(), log, 0.05), lambda r: r == "bad", max_workers=2))
    assert log[:2] == ["start:a", "start:b"]  # b started before a ended


def test_stop_on_failure_stops_every_later_stage():
    log: list[str] = []
    stages = [("ingest", ["a", "b"]), ("canonize", ["c"]), ("project", ["d"])]
    results = list(
        run_stages(stages, {}, _runner({"a"}, log), lambda r: r == "bad", stop_on_failure=True)
    )
    assert _outcomes(results) == {"a": "failed", "b": "ran", "c": "stopped", "d": "stopped"}
    assert "start:c" not in log


def test_without_stop_only_the_downstream_of_a_failure_is_skipped():
    log: list[str] = []
    stages = [("ingest", ["a", "b"]), ("canonize", ["c", "d"]), ("project", ["e"])]
    deps = {"c": ["a"], "d": ["b"], "e": ["c"]}
    results = list(run_stages(stages, deps, _runner({"a"}, log), lambda r: r == "bad"))
    assert _outcomes(results) == {
        "a": "failed",
        "b": "ran",
        "c": "upstream_failed",
        "d": "ran",
        "e": "upstream_failed",
    }


def test_a_dependency_inside_a_stage_is_waited_for():
    log: list[str] = []
    stages = [("project", ["late", "early"])]
    deps = {"late": ["early"]}
    list(run_stages(stages, deps, _runner(set(), log, 0.01), lambda r: r == "bad", max_workers=2))
    assert log.index("start:late") > log.index("end:early")


def test_an_exception_in_the_runner_is_that_job_failing():
    def run_one(jid: str) -> str:
        if jid == "boom":
            raise RuntimeError("bug")
        return "ok"

    results = list(run_stages([("s", ["boom", "fine"])], {}, run_one, lambda r: r == "bad"))
    outcome = {r.job_id: r for r in results}
    assert outcome["boom"].failed and isinstance(outcome["boom"].result, RuntimeError)
    assert not outcome["fine"].failed
