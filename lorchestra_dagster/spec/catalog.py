"""Load a catalog directory: jobs, pipelines, and every other YAML in it.

A catalog is scanned recursively. A YAML mapping with ``job_id`` is a job,
with ``pipeline_id`` a pipeline. ``transforms/``, ``schemas/``,
``instruments/``, ``bindings/`` and ``sources.yaml`` at the top are registries
(read by callables, scanned here only for secrets and syntax). Any other YAML
is ignored unless it looks like a broken job. A job's stage is the first
directory under the catalog (``ingest``, ``canonize``, ...; ``other`` for a
job at the top).

Loading never raises on bad input: problems become ``Catalog.issues`` and the
good jobs are still usable, so one run reports everything.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.spec.issues import Issue, Severity
from lorchestra_dagster.spec.models import JobDef, PipelineDef
from lorchestra_dagster.spec.schema_errors import issues_from_validation_error
from lorchestra_dagster.spec.yamlpos import Pos, YamlDoc, YamlSyntaxError, load_yaml_file

#: Registry folders whose content changes what a job computes without changing its YAML
#: (in the order their files enter the registries' hash).
REGISTRY_DIRS = (
    "transforms",
    "schemas",
    "instruments",
    "bindings",
    "projections",
    "measure-registry",
    "form-binding-registry",
)
REGISTRY_FILES = frozenset({"sources.yaml", "sources.yml"})
_SKIP_PARTS = frozenset({"__pycache__", "node_modules"})
FileKind = Literal["job", "pipeline", "registry", "other", "broken"]


@dataclass
class LoadedJob:
    """A valid JobDef and where it came from.

    ``jobdef.extras`` already holds the content of extras that named a
    ``.yaml`` file (so the spec hash covers them); ``extra_files`` maps those
    extras to their files.
    """

    jobdef: JobDef
    path: Path
    stage: str
    catalog_dir: Path
    extra_files: dict[str, Path] = field(default_factory=dict)

    @property
    def job_id(self) -> str:
        return self.jobdef.job_id


@dataclass
class CatalogFile:
    """One YAML file of the catalog, parsed with positions (None on a syntax error)."""

    path: Path
    rel: Path
    kind: FileKind
    doc: YamlDoc | None


@dataclass
class Catalog:
    """Everything under one catalog directory."""

    root: Path
    jobs: dict[str, LoadedJob] = field(default_factory=dict)
    pipelines: dict[str, PipelineDef] = field(default_factory=dict)
    pipeline_paths: dict[str, Path] = field(default_factory=dict)
    files: list[CatalogFile] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    def job(self, job_id: str) -> LoadedJob:
        """The job named ``job_id``; a PermanentError suggests near names when absent."""
        if job_id in self.jobs:
            return self.jobs[job_id]
        raise PermanentError(_unknown("job", job_id, self.jobs))

    def pipeline(self, pipeline_id: str) -> PipelineDef:
        """The pipeline named ``pipeline_id``; a PermanentError suggests near names."""
        if pipeline_id in self.pipelines:
            return self.pipelines[pipeline_id]
        raise PermanentError(_unknown("pipeline", pipeline_id, self.pipelines))

    def resolve_pipeline_id(self, name: str) -> str:
        """The pipeline ``name`` means: its id, or ``pipeline.<name>`` as the Dagster job
        is named; a PermanentError with near names when neither exists."""
        if name in self.pipelines:
            return name
        if f"pipeline.{name}" in self.pipelines:
            return f"pipeline.{name}"
        raise PermanentError(_unknown("pipeline", name, self.pipelines))

    def jobs_in_stage(self, stage: str) -> list[LoadedJob]:
        return [j for j in self.jobs.values() if j.stage == stage]


def _unknown(kind: str, name: str, known: dict[str, Any]) -> str:
    names = list(known)
    near = difflib.get_close_matches(name, names, n=3)
    if not near:
        # `daily` for `pipeline.daily_all`: compare against the names without their prefix too.
        short = {k.split(".", 1)[-1]: k for k in names}
        near = [short[m] for m in difflib.get_close_matches(name, list(short), n=3, cutoff=0.5)]
    if near:
        hint = f" (did you mean {', '.join(near)}?)"
    elif names and len(names) <= 10:
        hint = f" (known: {', '.join(sorted(names))})"
    else:
        hint = f"; `lorchestra {'jobs' if kind == 'job' else 'pipeline'} list` shows them"
    return f"unknown {kind} {name!r} in the catalog{hint}"


def _issue(path: Path, pos: Pos, code: str, message: str, severity: Severity = "error") -> Issue:
    return Issue(
        path=str(path), line=pos.line, col=pos.col, code=code, message=message, severity=severity
    )


def iter_yaml_files(root: Path) -> list[Path]:
    """Every catalog file under ``root``, sorted, hidden directories skipped.

    ``.yaml``/``.yml`` everywhere, and ``.json`` outside the registries: the
    original wrote JobDefs and pipelines as JSON too (JSON is YAML, so they load
    with positions the same way). JSON inside a registry (schemas, golden files,
    measure specs) is read by that registry's loader only.
    """
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if any(part.startswith(".") or part in _SKIP_PARTS for part in rel.parts):
            continue
        if not p.is_file():
            continue
        if p.suffix in (".yaml", ".yml") or (p.suffix == ".json" and not _is_registry(rel)):
            out.append(p)
    return sorted(out)


def _is_registry(rel: Path) -> bool:
    return rel.parts[0] in REGISTRY_DIRS if len(rel.parts) > 1 else rel.name in REGISTRY_FILES


def _classify(rel: Path, doc: YamlDoc) -> FileKind:
    if _is_registry(rel):
        return "registry"
    data = doc.data
    if not isinstance(data, dict):
        return "other"
    is_job, is_pipeline = "job_id" in data, "pipeline_id" in data
    if is_job and is_pipeline:
        return "broken"
    if is_job:
        return "job"
    if is_pipeline:
        return "pipeline"
    if isinstance(data.get("steps"), list) or isinstance(data.get("stages"), list):
        return "broken"
    return "other"


def load_catalog(dir: str | Path) -> Catalog:  # the public name the brief fixes
    """Scan ``dir`` and load every job and pipeline in it; problems go to ``issues``."""
    root = Path(dir)
    cat = Catalog(root=root)
    if not root.is_dir():
        cat.issues.append(
            _issue(
                root, Pos(1, 1), "L002", "catalog directory does not exist or is not a directory"
            )
        )
        return cat
    job_seen: dict[str, Path] = {}
    for path in iter_yaml_files(root):
        rel = path.relative_to(root)
        try:
            doc = load_yaml_file(path)
        except YamlSyntaxError as exc:
            cat.files.append(
                CatalogFile(path, rel, "registry" if _is_registry(rel) else "other", None)
            )
            cat.issues.append(_issue(path, Pos(exc.line, exc.col), "L001", exc.message))
            continue
        kind = _classify(rel, doc)
        cat.files.append(CatalogFile(path, rel, kind, doc))
        for key_path, pos in doc.duplicate_keys:
            cat.issues.append(
                _issue(path, pos, "L003", f"duplicate key {key_path[-1]!r} (the last one wins)")
            )
        if kind == "broken":
            data = doc.data
            both = "job_id" in data and "pipeline_id" in data
            msg = (
                "has both job_id and pipeline_id; a file is one or the other"
                if both
                else "looks like a job or pipeline (steps/stages) but has no job_id/pipeline_id"
            )
            cat.issues.append(_issue(path, Pos(1, 1), "L002", msg))
        elif kind == "job":
            _load_job(cat, path, rel, doc, job_seen)
        elif kind == "pipeline":
            _load_pipeline(cat, path, doc, job_seen)
    return cat


def _load_job(cat: Catalog, path: Path, rel: Path, doc: YamlDoc, seen: dict[str, Path]) -> None:
    data = doc.data
    job_id = data.get("job_id")
    if isinstance(job_id, str):
        if job_id != path.stem:
            cat.issues.append(
                _issue(
                    path,
                    doc.pos(("job_id",)),
                    "L020",
                    f"job_id {job_id!r} differs from the file stem {path.stem!r} "
                    f"(rename the file or the job)",
                )
            )
        if job_id in seen:
            cat.issues.append(
                _issue(
                    path,
                    doc.pos(("job_id",)),
                    "L021",
                    f"duplicate id {job_id!r}: also defined in {seen[job_id]}",
                )
            )
            return
        seen[job_id] = path
    try:
        jobdef = JobDef.model_validate(data)
    except ValidationError as exc:
        cat.issues.extend(issues_from_validation_error(exc, doc, str(path)))
        return
    extra_files: dict[str, Path] = {}
    for key, value in jobdef.extras.items():
        if isinstance(value, str) and value.endswith((".yaml", ".yml")):
            target = cat.root / value
            if not target.is_file():
                continue  # validation reports it (L037) from the raw YAML
            try:
                jobdef.extras[key] = load_yaml_file(target).data
                extra_files[key] = target
            except YamlSyntaxError:
                continue  # the scan of that file reports its syntax error (L001)
    stage = rel.parts[0] if len(rel.parts) > 1 else "other"
    cat.jobs[jobdef.job_id] = LoadedJob(jobdef, path, stage, cat.root, extra_files)


def _load_pipeline(cat: Catalog, path: Path, doc: YamlDoc, seen: dict[str, Path]) -> None:
    pid = doc.data.get("pipeline_id")
    if isinstance(pid, str):
        if pid != path.stem:
            cat.issues.append(
                _issue(
                    path,
                    doc.pos(("pipeline_id",)),
                    "L023",
                    f"pipeline_id {pid!r} differs from the file stem {path.stem!r}",
                    severity="warning",
                )
            )
        if pid in seen:
            cat.issues.append(
                _issue(
                    path,
                    doc.pos(("pipeline_id",)),
                    "L021",
                    f"duplicate id {pid!r}: also defined in {seen[pid]}",
                )
            )
            return
        seen[pid] = path
    try:
        pipeline = PipelineDef.model_validate(doc.data)
    except ValidationError as exc:
        cat.issues.extend(issues_from_validation_error(exc, doc, str(path), kind="pipeline"))
        return
    cat.pipelines[pipeline.pipeline_id] = pipeline
    cat.pipeline_paths[pipeline.pipeline_id] = path
