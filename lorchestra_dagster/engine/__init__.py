"""The engine: compile a JobDef and run its steps (the one implementation of job semantics).

Faces never call it directly: they start Dagster runs (``lorchestra_dagster.launch``),
and the catalog op runs each job through ``execute_with``. The exports load on first
use, so ``engine.tables`` (the run tables the CLI declares) costs no executor import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorchestra_dagster.engine.executor import execute_with
    from lorchestra_dagster.engine.handlers import run_step
    from lorchestra_dagster.engine.results import ExecutionResult, JobSummary, PipelineResult
    from lorchestra_dagster.engine.services import Services
    from lorchestra_dagster.engine.state import RunState

_EXPORTS = {
    "ExecutionResult": "results",
    "JobSummary": "results",
    "PipelineResult": "results",
    "RunState": "state",
    "Services": "services",
    "execute_with": "executor",
    "run_step": "handlers",
}
__all__ = [
    "ExecutionResult",
    "JobSummary",
    "PipelineResult",
    "RunState",
    "Services",
    "execute_with",
    "run_step",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
