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


class _Overlap:
    """Records how many jobs of each group run at once. A job of group ``meet`` waits up
    to ``patience`` seconds for a second one of its group to start: jobs that may run
    together are seen to (whatever the machine's speed), and jobs that must not would
    have met had the limit let them."""

    def __init__(self, groups: dict[str, list[str]], meet: str, patience: float = 5) -> None:
        self.groups = groups
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.log: list[str] = []
        self.met = threading.Event()
        self.meet = meet
        self.patience = patience

    def __call__(self, jid: str) -> str:
        with self.lock:
            self.log.append(f"start:{jid}")
            for g in self.groups.get(jid, []):
                self.now[g] = self.now.get(g, 0) + 1
                self.most[g] = max(self.most.get(g, 0), self.now[g])
                if g == self.meet and self.now[g] >= 2:
                    self.met.set()
        if self.meet in self.groups.get(jid, []):
            self.met.wait(timeout=self.patience)
        with self.lock:
            for g in self.groups.get(jid, []):
                self.now[g] -= 1
            self.log.append(f"end:{jid}")
        return "ok"


def test_a_source_limit_of_1_never_runs_two_of_its_jobs_at_once():
    groups = {"s1": ["stripe"], "s2": ["stripe"], "s3": ["stripe"], "g1": ["gmail"]}
    run_one = _Overlap(groups, meet="stripe", patience=0.3)
    stages = [("ingest", ["s1", "s2", "s3", "g1"])]
    results = list(
        run_stages(
            stages,
            {},
            run_one,
            lambda r: r == "bad",
            max_workers=4,
            groups=groups,
            group_limits={"stripe": 1},
        )
    )
    assert _outcomes(results) == {"s1": "ran", "s2": "ran", "s3": "ran", "g1": "ran"}
    assert run_one.most["stripe"] == 1 and not run_one.met.is_set()
    # Each Stripe job starts only after the one before it ended.
    starts = [e for e in run_one.log if e.startswith(("start:s", "end:s"))]
    assert starts == ["start:s1", "end:s1", "start:s2", "end:s2", "start:s3", "end:s3"]
    # A free worker is not held back by another source's limit: g1 ran beside s1.
    assert run_one.log.index("start:g1") < run_one.log.index("end:s1")


def test_a_source_limit_of_2_lets_two_run_and_never_three():
    groups = {f"s{i}": ["stripe"] for i in range(4)}
    run_one = _Overlap(groups, meet="stripe")
    list(
        run_stages(
            [("ingest", list(groups))],
            {},
            run_one,
            lambda r: r == "bad",
            max_workers=4,
            groups=groups,
            group_limits={"stripe": 2},
        )
    )
    assert run_one.met.is_set() and run_one.most["stripe"] == 2


def test_the_next_job_starts_before_the_caller_has_handled_a_result():
    """The caller logs events and runs checks between results: the worker must not wait."""
    started = {jid: threading.Event() for jid in ("a", "b", "c")}

    def run_one(jid: str) -> str:
        started[jid].set()
        return "ok"

    seen_started: dict[str, bool] = {}
    gen = run_stages(
        [("ingest", ["a", "b", "c"])], {}, run_one, lambda r: r == "bad", max_workers=1
    )
    for sched in gen:
        nxt = {"a": "b", "b": "c"}.get(sched.job_id)
        # The next job was submitted before this result came out; give its thread time to start.
        seen_started[sched.job_id] = nxt is None or started[nxt].wait(timeout=10)
    assert seen_started == {"a": True, "b": True, "c": True}
