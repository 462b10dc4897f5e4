"""Run records: what happened, written to ``ops.runs`` / ``ops.step_runs``.

Records hold counts, timings, hashes and error structure, never payloads:
``StepManifest.from_params`` replaces item lists with ``{count, sha256}`` so a
manifest can be stored and shown without carrying client data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal["running", "succeeded", "failed", "skipped"]

#: Keys whose values are client data whatever their shape.
_PAYLOAD_KEYS = frozenset({"items", "rows", "content", "payload"})


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def digest(obj: Any) -> dict[str, Any]:
    """``{count, sha256}`` of a payload value: enough to compare runs, nothing to read."""
    count = len(obj) if isinstance(obj, list | tuple | Mapping | str) else 1
    sha = hashlib.sha256(_canonical(obj).encode("utf-8")).hexdigest()
    return {"count": count, "sha256": sha}


def redact(value: Any, key: str | None = None) -> Any:
    """Copy ``value`` with every payload replaced by its digest.

    Redacted: values under ``items``/``rows``/``content``/``payload``, any list
    holding a dict or list (rows), and plans (summarised to id + op count).
    Lists of scalars such as ``key_columns`` are kept: they are spec, not data.
    """
    if key in _PAYLOAD_KEYS and value is not None and not isinstance(value, bool | int | float):
        if isinstance(value, str) and value.startswith("@"):
            return value  # an unresolved reference is spec, not data
        return digest(value)
    if isinstance(value, Mapping):
        if value.get("plan_version") and isinstance(value.get("ops"), list):
            sha = digest(value)["sha256"]
            return {"plan_id": value.get("plan_id"), "ops": len(value["ops"]), "sha256": sha}
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if any(isinstance(v, Mapping | list | tuple) for v in value):
            return digest(list(value))
        return list(value)
    return value


class StepManifest(BaseModel):
    """A step's resolved params with payloads replaced by counts and hashes."""

    model_config = ConfigDict(extra="forbid")

    step_id: str = Field(description="Step id")
    op: str = Field(description="Operation")
    params: dict[str, Any] = Field(default_factory=dict, description="Redacted params")

    @classmethod
    def from_params(cls, step_id: str, op: str, params: Mapping[str, Any]) -> StepManifest:
        """Build a manifest from resolved params, keeping no payloads."""
        return cls(step_id=step_id, op=op, params=redact(dict(params)))


class Attempt(BaseModel):
    """One try of a step."""

    model_config = ConfigDict(extra="forbid")

    number: int = Field(ge=1, description="1 for the first try")
    started_at: datetime = Field(description="UTC start")
    finished_at: datetime | None = Field(default=None, description="UTC end")
    status: RunStatus = Field(description="Outcome of this try")
    error: dict[str, Any] | None = Field(default=None, description="LorchestraError.to_dict()")


class StepRun(BaseModel):
    """Outcome of one step of a run (``ops.step_runs``)."""

    model_config = ConfigDict(extra="forbid")

    step_id: str = Field(description="Step id")
    op: str = Field(description="Operation")
    status: RunStatus = Field(description="Outcome")
    attempts: list[Attempt] = Field(default_factory=list, description="Every try")
    started_at: datetime | None = Field(default=None, description="UTC start")
    finished_at: datetime | None = Field(default=None, description="UTC end")
    duration_s: float | None = Field(default=None, description="Wall-clock seconds")
    rows_in: int = Field(default=0, description="Items the step received")
    rows_out: int = Field(default=0, description="Items the step produced")
    rows_written: int = Field(default=0, description="Rows inserted+updated+deleted")
    manifest: StepManifest | None = Field(default=None, description="Redacted params")
    error: dict[str, Any] | None = Field(default=None, description="Root cause, structured")


class RunRecord(BaseModel):
    """One run of a job or pipeline (``ops.runs``); pipelines link child runs."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(description="Run id")
    kind: Literal["job", "pipeline"] = Field(description="What ran")
    job_id: str | None = Field(default=None, description="Job id (kind job)")
    pipeline_id: str | None = Field(default=None, description="Pipeline id (kind pipeline)")
    parent_run_id: str | None = Field(default=None, description="Pipeline or parent job run")
    status: RunStatus = Field(description="Outcome")
    dry_run: bool = Field(default=False, description="Nothing was written")
    started_at: datetime = Field(description="UTC start")
    finished_at: datetime | None = Field(default=None, description="UTC end")
    duration_s: float | None = Field(default=None, description="Wall-clock seconds")
    rows_read: int = Field(default=0, description="Rows read by storacle.query steps")
    rows_written: int = Field(default=0, description="Rows written by submits")
    job_def_sha256: str | None = Field(default=None, description="Spec hash (kind job)")
    error: dict[str, Any] | None = Field(default=None, description="Root cause, structured")
    steps: list[StepRun] = Field(default_factory=list, description="Per-step outcomes")
    child_run_ids: list[str] = Field(default_factory=list, description="Runs of child jobs")
