"""Runs whose process died are marked failed on the next start, with when and why.

The CLI runs Dagster runs in its own process (``launch``); a ``kill -9`` or a
crash leaves such a run ``STARTED`` forever, since no launcher watches it.
Each in-process run is tagged with its owner (host, pid and the pid's start
time, so a reused pid is not mistaken for the owner). Whenever the instance
is opened, runs of this host whose owner is gone are reported failed with
``lorchestra/abandoned_at`` and ``lorchestra/abandoned_reason`` tags. Runs the
daemon launched are Dagster's run monitoring's job (``run_monitoring`` in
dagster.yaml).
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

OWNER_TAG = "lorchestra/owner"
ABANDONED_AT_TAG = "lorchestra/abandoned_at"
ABANDONED_REASON_TAG = "lorchestra/abandoned_reason"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), else empty."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Field 22; the command name (field 2) may contain spaces, so split after ')'.
    return stat.rsplit(")", 1)[1].split()[19]


def owner_tag() -> dict[str, str]:
    """The tag naming this process as the owner of a run it executes in-process."""
    pid = os.getpid()
    return {OWNER_TAG: f"{socket.gethostname()}:{pid}:{_start_time(pid)}"}


def _owner_alive(owner: str) -> bool | None:
    """True/False for an owner on this host; None for another host (not ours to judge)."""
    host, _, rest = owner.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not started or _start_time(pid) == started


def mark_abandoned(instance: dg.DagsterInstance) -> list[str]:
    """Report every in-progress run whose owner process is gone as failed; their ids."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES))
    )
    marked: list[str] = []
    for record in records:
        run = record.dagster_run
        owner = run.tags.get(OWNER_TAG)
        if not owner or _owner_alive(owner) is not False:
            continue
        now = datetime.now(UTC).isoformat(timespec="seconds")
        reason = (
            f"abandoned: the process that ran it ({owner.split(':')[1]}) is gone "
            "(killed or crashed); detected at the next start"
        )
        instance.add_run_tags(run.run_id, {ABANDONED_AT_TAG: now, ABANDONED_REASON_TAG: reason})
        instance.report_run_failed(run, message=f"{reason} ({now})")
        marked.append(run.run_id)
    return marked
