"""The executor: compile a JobDef, dispatch its steps, record every run."""

from lorchestra_dagster.engine.executor import execute, execute_with
from lorchestra_dagster.engine.handlers import run_step
from lorchestra_dagster.engine.pipeline import run_pipeline
from lorchestra_dagster.engine.results import ExecutionResult, JobSummary, PipelineResult
from lorchestra_dagster.engine.services import Services
from lorchestra_dagster.engine.state import RunState

__all__ = [
    "ExecutionResult",
    "JobSummary",
    "PipelineResult",
    "RunState",
    "Services",
    "execute",
    "execute_with",
    "run_pipeline",
    "run_step",
]
