"""Which job runs when, inside one Dagster run: stages in order, independent jobs in parallel.

The Dagster op of the catalog (``defs/catalog_assets.py``) hands this module
the jobs it was asked to materialize, grouped in stages (a pipeline's stages,
or the five catalog stages for an ad-hoc selection), and a function that runs
one job. Jobs of a stage start as soon as the jobs they depend on (lineage)
are done, at most ``max_workers`` at a time and at most a group's limit of
one group at a time (a group is a source: the ingest jobs of one vendor, whose
rate limit is per account, so more workers must not mean more load on one
vendor), and results come back in the order they finish so the op can report
each materialization at once.

Failure rules, the same whichever face started the run:

* ``stop_on_failure``: after a stage with a failed job, no later stage starts
  (its jobs are reported ``skipped``).
* otherwise a job is skipped only when one of its upstream jobs failed or was
  skipped for that reason; everything else still runs.

Pure threading, no Dagster and no storage: the rules test in milliseconds.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Literal

#: Stack for the threads that run jobs. jsonatapy's Rust parser recursed past the
#: default 8 MiB thread stack (a segfault) when a process ran daily_all twice on
#: BigQuery; the main thread never showed it. Only address space is reserved.
WORKER_STACK_BYTES = 256 * 1024 * 1024

Outcome = Literal["ran", "upstream_failed", "stopped"]


def ensure_worker_stack() -> None:
    """Threads created from now on get ``WORKER_STACK_BYTES`` of stack (idempotent)."""
    if threading.stack_size() < WORKER_STACK_BYTES:
        threading.stack_size(WORKER_STACK_BYTES)


_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def worker_pool(size: int) -> ThreadPoolExecutor:
    """The process's job threads: at least ``size`` of them, kept for the process's life.

    Long-lived on purpose: each thread keeps its compiled JSONata expressions
    (jsonatapy's are per thread), and a process that ran many runs, each with
    threads of its own, crashed inside jsonatapy's compiler in a fresh thread.
    The scheduler never has more than ``max_workers`` jobs in the pool at once.
    """
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE < size:
            ensure_worker_stack()
            old = _POOL
            _POOL = ThreadPoolExecutor(max_workers=size, thread_name_prefix="job")
            _POOL_SIZE = size
            if old is not None:
                old.shutdown(wait=False)
        return _POOL


@dataclass(frozen=True)
class Scheduled:
    """What happened to one job: ``ran`` (``result`` says how) or why it never started."""

    job_id: str
    stage: str
    outcome: Outcome
    result: object = None
    failed: bool = False
    reason: str = ""


def run_stages(
    stages: Sequence[tuple[str, Sequence[str]]],
    deps: Mapping[str, Sequence[str]],
    run_one: Callable[[str], object],
    is_failure: Callable[[object], bool],
    *,
    max_workers: int = 2,
    stop_on_failure: bool = False,
    before_stage: Callable[[str], None] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    group_limits: Mapping[str, int] | None = None,
) -> Iterator[Scheduled]:
    """Run ``stages`` and yield one ``Scheduled`` per job as it finishes or is skipped.

    Args:
        stages: ``(stage name, job ids)`` in order; a job appears once.
        deps: upstream job ids of each job (ids outside ``stages`` are ignored).
        run_one: runs one job and returns its result; it must not raise for a job
            failure (an exception is reported as that job's failure all the same).
        is_failure: tells a failed result from a good one.
        max_workers: jobs running at once.
        stop_on_failure: no stage starts after a stage with a failure.
        before_stage: called with a stage's name before its first job starts (after
            every job of the stages before it has finished), for work that belongs
            between stages; not called for a stage that does not start.
        groups: the groups of each job (its sources); a job starts only while every
            one of its groups has a free slot. Jobs not named belong to none.
        group_limits: jobs of a group running at once (at least 1); a group not
            named here is bounded by ``max_workers`` alone.
    """
    selected = {jid for _, ids in stages for jid in ids}
    failed: set[str] = set()
    stopped = False
    pool = worker_pool(max(1, max_workers))
    groups_of = {jid: tuple(dict.fromkeys(gs)) for jid, gs in (groups or {}).items()}
    limits = {g: max(1, n) for g, n in (group_limits or {}).items()}
    busy: Counter[str] = Counter()  # running jobs per group

    def fits(jid: str) -> bool:
        return all(busy[g] < limits[g] for g in groups_of.get(jid, ()) if g in limits)

    for stage, ids in stages:
        if stopped:
            for jid in ids:
                yield Scheduled(jid, stage, "stopped", reason="an earlier stage failed")
            continue
        if before_stage is not None:
            before_stage(stage)
        pending = list(ids)
        running: dict[Future[object], str] = {}
        done: set[str] = set()
        stage_failed = False
        finished_now: list[Scheduled] = []
        while pending or running:
            skipped_now: list[Scheduled] = []
            for jid in list(pending):
                ups = [u for u in deps.get(jid, ()) if u in selected]
                bad = [u for u in ups if u in failed]
                if bad:
                    pending.remove(jid)
                    failed.add(jid)
                    skipped_now.append(
                        Scheduled(jid, stage, "upstream_failed", reason=f"upstream {bad[0]} failed")
                    )
                    continue
                if all(u in done or u not in pending_or_running(pending, running) for u in ups):
                    if len(running) < max(1, max_workers) and fits(jid):
                        pending.remove(jid)
                        busy.update(groups_of.get(jid, ()))
                        running[pool.submit(run_one, jid)] = jid
            # The next jobs are already running while the caller handles these (it logs
            # events and runs checks between results): the workers never wait for it.
            yield from finished_now
            yield from skipped_now
            finished_now = []
            if not running:
                if pending:  # only a dependency cycle inside the stage can leave these
                    for jid in pending:
                        failed.add(jid)
                        yield Scheduled(jid, stage, "upstream_failed", reason="dependency cycle")
                    pending.clear()
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                jid = running.pop(future)
                busy.subtract(groups_of.get(jid, ()))
                done.add(jid)
                try:
                    result = future.result()
                    bad_result = is_failure(result)
                except Exception as exc:  # noqa: BLE001 - a bug in run_one: the job failed, the run goes on
                    result, bad_result = exc, True
                if bad_result:
                    failed.add(jid)
                    stage_failed = True
                finished_now.append(Scheduled(jid, stage, "ran", result=result, failed=bad_result))
        yield from finished_now  # the stage's last results (nothing left to start)
        if stage_failed and stop_on_failure:
            stopped = True


def pending_or_running(pending: Sequence[str], running: Mapping[Future[object], str]) -> set[str]:
    """Jobs of the current stage that have not finished yet."""
    return set(pending) | set(running.values())
