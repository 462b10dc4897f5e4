"""A compiled job: what the engine and the Dagster layer execute.

A ``JobInstance`` is a JobDef bound to one envelope: compile-time references
resolved, skipped steps dropped, each remaining step knowing which earlier
steps it reads (``depends_on``, from its ``@run`` references).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lorchestra_dagster.spec.models import Envelope, RetryPolicy


class ResolvedStep(BaseModel):
    """One step ready to run: params hold only ``@run`` references, as strings."""

    model_config = ConfigDict(extra="forbid")

    step_id: str = Field(description="Step id")
    op: str = Field(description="Operation")
    params: dict[str, Any] = Field(description="Params, compile-time references resolved")
    continue_on_error: bool = Field(default=False, description="Failure does not fail the job")
    timeout_s: float | None = Field(default=None, description="Limit per attempt")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry policy")
    depends_on: list[str] = Field(
        default_factory=list, description="Earlier steps whose output the params reference"
    )


class JobInstance(BaseModel):
    """A JobDef compiled against an envelope; ``job_def_sha256`` identifies the spec."""

    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(description="Job id")
    version: str = Field(description="JobDef format version")
    job_def_sha256: str = Field(description="sha256 of the JobDef's canonical JSON")
    envelope: Envelope = Field(description="The envelope compiled against")
    steps: list[ResolvedStep] = Field(description="Steps to run, in order")
    skipped_steps: list[str] = Field(default_factory=list, description="Steps whose 'if' was false")
    source_path: str | None = Field(default=None, description="YAML file of the JobDef")

    def step(self, step_id: str) -> ResolvedStep:
        """The resolved step named ``step_id`` (KeyError when absent or skipped)."""
        for s in self.steps:
            if s.step_id == step_id:
                return s
        raise KeyError(step_id)
