"""Compile a JobDef and an envelope into a JobInstance (pure: no I/O but @self files).

Compile-time references (``@ctx``, ``@payload``, ``@self``) are resolved
here, ``if`` conditions decide which steps run, and each step learns which
earlier steps it reads. ``@run`` references stay strings for the executor.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lorchestra_dagster.errors import CompileError, LorchestraError
from lorchestra_dagster.spec.instance import JobInstance, ResolvedStep
from lorchestra_dagster.spec.models import Envelope, JobDef
from lorchestra_dagster.spec.refs import iter_refs, parse_ref, resolve_compile_refs


def canonical_json(obj: Any) -> str:
    """The one canonical JSON form hashes are taken over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def job_def_sha256(jobdef: JobDef) -> str:
    """sha256 of the JobDef's canonical JSON (by alias, nulls dropped)."""
    dumped = jobdef.model_dump(by_alias=True, exclude_none=True)
    return hashlib.sha256(canonical_json(dumped).encode("utf-8")).hexdigest()


def _condition(value: Any, jobdef: JobDef, step_id: str, env: Envelope, cat: Path | None) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    ref = parse_ref(value)
    if ref is None or not ref.is_compile_time:
        raise CompileError(
            f"'if' of step {step_id!r} must be a bool or a @ctx/@payload/@self reference, "
            f"got {value!r}",
            job_id=jobdef.job_id,
            step_id=step_id,
        )
    return truthy(resolve_compile_refs(value, env, jobdef.extras, cat))


_FALSE_STRINGS = frozenset({"", "0", "false", "no", "off", "none", "null"})


def truthy(value: Any) -> bool:
    """Truth of a resolved ``if``: Python truth, but ``--ctx flag=false`` (a string) is false.

    Envelope values often arrive as strings from the command line, where
    ``"false"`` or ``"0"`` plainly mean no.
    """
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_STRINGS
    return bool(value)


def compile_job(
    jobdef_or_loaded: Any,
    envelope: Envelope | dict[str, Any],
    catalog_dir: str | Path | None = None,
) -> JobInstance:
    """Bind ``jobdef_or_loaded`` (a JobDef or a catalog LoadedJob) to ``envelope``.

    Raises:
        CompileError: a missing ``@ctx``/``@payload``/``@self`` key (named), an
            ``@run`` reference to a skipped, unknown or later step, or an envelope
            naming another job.
    """
    source_path: str | None = None
    jobdef = jobdef_or_loaded
    if not isinstance(jobdef, JobDef):
        jobdef = getattr(jobdef_or_loaded, "jobdef", None)
        if not isinstance(jobdef, JobDef):
            raise TypeError("compile_job takes a JobDef or a LoadedJob")
        source_path = str(jobdef_or_loaded.path)
        if catalog_dir is None:
            catalog_dir = getattr(jobdef_or_loaded, "catalog_dir", None)
    env = envelope if isinstance(envelope, Envelope) else Envelope.model_validate(envelope)
    if env.job_id != jobdef.job_id:
        raise CompileError(
            f"envelope names job {env.job_id!r} but the JobDef is {jobdef.job_id!r}",
            job_id=jobdef.job_id,
        )
    cat = Path(catalog_dir) if catalog_dir is not None else None

    order = {s.step_id: i for i, s in enumerate(jobdef.steps)}
    skipped: list[str] = []
    resolved: list[ResolvedStep] = []
    for index, step in enumerate(jobdef.steps):
        try:
            if not _condition(step.if_, jobdef, step.step_id, env, cat):
                skipped.append(step.step_id)
                continue
            params = resolve_compile_refs(step.params_dict(), env, jobdef.extras, cat)
        except LorchestraError as exc:
            exc.job_id = exc.job_id or jobdef.job_id
            exc.step_id = exc.step_id or step.step_id
            exc.file = exc.file or source_path
            raise
        depends_on: list[str] = []
        for ref in iter_refs(params):
            dep = ref.step_id
            if ref.scope != "run" or dep is None or dep == "envelope" or dep in depends_on:
                continue
            problem = None
            if dep not in order:
                problem = "an unknown step"
            elif order[dep] >= index:
                problem = "itself" if dep == step.step_id else "a later step"
            elif dep in skipped:
                problem = "a step skipped by its 'if'"
            if problem:
                raise CompileError(
                    f"reference {ref.raw} in step {step.step_id!r} points at {problem} ({dep!r})",
                    job_id=jobdef.job_id,
                    step_id=step.step_id,
                    file=source_path,
                )
            depends_on.append(dep)
        resolved.append(
            ResolvedStep(
                step_id=step.step_id,
                op=step.op,
                params=params,
                continue_on_error=step.continue_on_error,
                timeout_s=step.timeout_s,
                retry=step.retry,
                depends_on=depends_on,
            )
        )
    return JobInstance(
        job_id=jobdef.job_id,
        version=jobdef.version,
        job_def_sha256=job_def_sha256(jobdef),
        envelope=env,
        steps=resolved,
        skipped_steps=skipped,
        source_path=source_path,
    )
