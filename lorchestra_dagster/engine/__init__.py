"""The engine: compile a JobDef and run its steps (the one implementation of job semantics).

Faces never call it directly: they start Dagster runs (``lorchestra_dagster.launch``),
and the catalog op runs each job through ``execute_with``.
"""

from lorchestra_dagster.engine.executor import execute_with
from lorchestra_dagster.engine.handlers import run_step
from lorchestra_dagster.engine.results import ExecutionResult, JobSummary, PipelineResult
from lorchestra_dagster.engine.services import Services
from lorchestra_dagster.engine.state import RunState

__all__ = [
    "ExecutionResult",
    "JobSummary",
    "PipelineResult",
    "RunState",
    "Services",
    "execute_with",
    "run_step",
]
