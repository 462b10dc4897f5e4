"""Per-run state shared by the steps of one job run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lorchestra_dagster.engine.results import ExecutionResult
from lorchestra_dagster.spec.models import DEFAULT_BATCH_SIZE


@dataclass
class RunState:
    """Outputs of finished steps and the counters a run record needs.

    Outputs live in memory only: they carry client data and must never be
    written to disk outside the warehouse (DESIGN.md section 5).
    """

    run_id: str
    job_id: str
    envelope: dict[str, Any]
    dry_run: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    rows_read: int = 0
    rows_written: int = 0
    plans: list[dict[str, Any]] = field(default_factory=list)
    #: submit totals over every batch: rows, inserted, updated, unchanged, deleted
    submitted: dict[str, int] = field(default_factory=dict)
    plan_ids: list[str] = field(default_factory=list)
    #: runs a child job's envelope (``job.run``); injected by the executor, so the step
    #: handlers never import the executor that imports them
    run_child: Callable[[dict[str, Any]], ExecutionResult] | None = None

    @property
    def batch_size(self) -> int:
        """Rows per keyset page and per plan (the envelope's ``batch_size``, else 5,000)."""
        return int(self.envelope.get("batch_size") or DEFAULT_BATCH_SIZE)
