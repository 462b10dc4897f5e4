"""The write plan: an ordered list of JSON-RPC requests with a content-derived id.

A plan is what a job wants written. Its id is the sha256 of the canonical JSON
bytes (``jsonio.canonical_bytes``: orjson, sorted keys) of its ``[method, params]``
pairs only (never ``meta``), so the same rows always give the same id and a rerun
can be recognised. The whole list is encoded in one orjson call: the stdlib
encoder this replaced took longer over a 5,000-row plan than the DuckDB write
the plan carried (bench P2).
"""

from __future__ import annotations

import hashlib
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.storacle.jsonio import canonical_bytes
from lorchestra_dagster.storacle.params import PLAN_METHODS

PLAN_VERSION: Final = "storacle.plan/1.0.0"
__all__ = ["PLAN_METHODS", "PLAN_VERSION", "Plan", "PlanMeta", "PlanOp", "make_plan"]


def plan_id_of(ops: list[tuple[str, dict[str, Any]]] | list[list[Any]]) -> str:
    """sha256 hex of the canonical JSON bytes of ``[[method, params], ...]``."""
    pairs = [[method, params] for method, params in ops]
    return hashlib.sha256(canonical_bytes(pairs)).hexdigest()


class PlanMeta(BaseModel):
    """Who asked for the plan; not part of its id. Extra keys are kept (an extras bag)."""

    model_config = ConfigDict(extra="allow")

    correlation_id: str = Field(default="", description="Correlation id of the run")
    run_id: str = Field(default="", description="Run that built the plan")
    step_id: str = Field(default="", description="Step that built the plan")
    job_id: str = Field(default="", description="Job that built the plan")


class PlanOp(BaseModel):
    """One JSON-RPC 2.0 request inside a plan."""

    model_config = ConfigDict(extra="forbid")

    jsonrpc: Literal["2.0"] = Field(default="2.0", description="JSON-RPC version")
    id: str = Field(description="'<plan_id[:12]>:<n>', unique inside the plan")
    method: str = Field(description="One of PLAN_METHODS")
    params: dict[str, Any] = Field(description="Method params (see docs/architecture.md)")


class Plan(BaseModel):
    """A ``storacle.plan/1.0.0`` document."""

    model_config = ConfigDict(extra="forbid")

    plan_version: Literal["storacle.plan/1.0.0"] = Field(
        default=PLAN_VERSION, description="Format version"
    )
    plan_id: str = Field(description="sha256 of canonical JSON bytes of [[method, params], ...]")
    jsonrpc: Literal["2.0"] = Field(default="2.0", description="JSON-RPC version of the ops")
    meta: PlanMeta = Field(default_factory=PlanMeta, description="Run context, not hashed")
    ops: list[PlanOp] = Field(default_factory=list, description="Requests, applied in order")

    @property
    def row_count(self) -> int:
        """Rows carried by the plan's ops (for logs and metadata: counts, never payloads)."""
        return sum(len(op.params.get("rows") or []) for op in self.ops)


def make_plan(ops: list[tuple[str, dict[str, Any]]], meta: dict[str, Any] | None = None) -> Plan:
    """Build a plan with a deterministic id from ``(method, params)`` pairs.

    Raises:
        PermanentError: a method outside PLAN_METHODS (a programming error upstream;
            catalogs are validated before this runs).
    """
    for method, _ in ops:
        if method not in PLAN_METHODS:
            raise PermanentError(
                f"unknown plan method {method!r}; expected one of {sorted(PLAN_METHODS)}"
            )
    pid = plan_id_of(ops)
    return Plan(
        plan_id=pid,
        meta=PlanMeta(**(meta or {})),
        ops=[
            PlanOp(id=f"{pid[:12]}:{n}", method=method, params=params)
            for n, (method, params) in enumerate(ops)
        ],
    )
