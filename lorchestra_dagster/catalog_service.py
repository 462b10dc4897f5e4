"""The catalog service: load a catalog once, check it once, and say which jobs are usable.

``lorchestra validate``, ``lorchestra run``/``pipeline run`` and the Dagster
code location (``defs/build.py``) all call ``load_report``, so they accept
the same catalogs and report the same ``path:line:col: CODE message`` lines.

A broken job never takes the catalog down: an issue in a job's own file makes
that job *broken* (the code location shows it as an asset whose
materialization fails with the error); a lineage problem breaks the jobs it
names. Issues in shared files (``sources.yaml``, registries) are reported
but break no job at load time: the jobs that use them fail when they run,
with the same message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorchestra_dagster.errors import LorchestraError
from lorchestra_dagster.naming import STAGES
from lorchestra_dagster.spec import Issue, load_catalog, validate_loaded
from lorchestra_dagster.spec.catalog import REGISTRY_DIRS, Catalog
from lorchestra_dagster.spec.lineage import Lineage, infer_lineage, job_io, lineage_problems


@dataclass
class BrokenJob:
    """A job file that failed validation: where, and every issue of it."""

    job_id: str
    stage: str
    path: Path
    issues: list[Issue]

    def message(self) -> str:
        first = self.issues[0]
        more = f" (and {len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        return f"{first.render()}{more}"


@dataclass
class CatalogReport:
    """A loaded catalog, every issue of it, and what the engine may run."""

    root: Path
    catalog: Catalog
    issues: list[Issue]
    notes: list[str] = field(default_factory=list)
    broken: dict[str, BrokenJob] = field(default_factory=dict)
    lineage: Lineage | None = None
    registry_sha256: str = ""

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    def asset_jobs(self) -> list[Any]:
        """Every valid job, the five stages first in their order, then other folders.

        Each is an asset. Jobs outside the five stages (backfills, utilities in a
        folder of their own) take part in no inferred lineage.
        """
        jobs = [j for j in self.catalog.jobs.values() if j.job_id not in self.broken]
        return sorted(jobs, key=lambda j: (stage_order(j.stage), j.stage, j.job_id))

    def runnable(self, job_id: str) -> bool:
        return job_id in self.catalog.jobs and job_id not in self.broken


def stage_order(stage: str) -> int:
    """Position of a stage: the five in pipeline order, any other folder after them."""
    return STAGES.index(stage) if stage in STAGES else len(STAGES)


def registries(catalog_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """What the layers above spec know (callables, transforms, the view SQL check), plus notes."""
    from lorchestra_dagster.callables import callable_traits
    from lorchestra_dagster.callables.transforms import transform_ids
    from lorchestra_dagster.storacle.sql import check_view_ddl

    def view_sql(sql: str, dialect: str) -> None:
        check_view_ddl(sql, dialect=dialect)

    kw: dict[str, Any] = {
        "callables": callable_traits(),
        "view_sql": view_sql,
    }
    notes: list[str] = []
    try:
        kw["transform_ids"] = transform_ids(catalog_dir)
    except LorchestraError as exc:
        notes.append(f"transform id check skipped: {exc}")
    return kw, notes


def _registry_issues(root: Path) -> list[Issue]:
    """Transforms (checksums, schemas, goldens) and instruments/bindings, as issues."""
    from lorchestra_dagster.callables.transforms import catalog_problems as transform_problems
    from lorchestra_dagster.instruments.registry import catalog_problems as instrument_problems

    issues: list[Issue] = []
    for code, problems in (("L072", transform_problems(root)), ("L073", instrument_problems(root))):
        for problem in problems:
            issues.append(
                Issue(
                    path=str(problem["file"]),
                    line=1,
                    col=1,
                    code=code,
                    message=problem["message"],
                    severity="warning" if problem.get("severity") == "warning" else "error",
                )
            )
    return issues


def _source_issues(catalog: Catalog, root: Path) -> list[Issue]:
    """sources.yaml settings, and every stream a step fetches (``stream_param``) defined."""
    from lorchestra_dagster.callables import stream_steps
    from lorchestra_dagster.sources.catalog import check_sources, stream_ids
    from lorchestra_dagster.spec import load_yaml_file

    issues: list[Issue] = []
    for exc in check_sources(root):
        issues.append(
            Issue(
                path=str(exc.file or root / "sources.yaml"),
                line=exc.line or 1,
                col=exc.column or 1,
                code="L070",
                message=exc.message,
            )
        )
    if issues:
        return issues
    streams = stream_ids(root) if (root / "sources.yaml").is_file() else set()
    for loaded in catalog.jobs.values():
        for n, param, source in stream_steps(loaded.jobdef):
            if isinstance(source, str) and not source.startswith("@") and source not in streams:
                doc = load_yaml_file(loaded.path)
                pos = doc.pos(("steps", n, "params", param))
                known = ", ".join(sorted(streams)) or "none (no sources.yaml)"
                issues.append(
                    Issue(
                        path=str(loaded.path),
                        line=pos.line,
                        col=pos.col,
                        code="L071",
                        message=f"stream {source!r} is not in sources.yaml (defined: {known})",
                    )
                )
    return issues


def registry_sha256(root: Path) -> str:
    """One hash over every registry file: a new transform or instrument version changes it.

    Part of each job's input signature, so a changed registry reruns the jobs
    a no-op day would otherwise skip.
    """
    digest = hashlib.sha256()
    for name in REGISTRY_DIRS:
        base = root / name
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(root)).encode("utf-8"))
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _stage_of(root: Path, path: Path) -> str:
    rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
    return rel.parts[0] if len(rel.parts) > 1 else "other"


def load_report(root: str | Path) -> CatalogReport:
    """Load and check the catalog at ``root``: every issue, the broken jobs, the lineage."""
    root = Path(root)
    catalog = load_catalog(root)
    kw, notes = registries(root)
    issues = validate_loaded(catalog, **kw) + _source_issues(catalog, root)
    issues += _registry_issues(root)
    report = CatalogReport(root=root, catalog=catalog, issues=issues, notes=notes)
    job_files = {str(f.path): f for f in catalog.files if f.kind in ("job", "broken")}
    by_path = {str(j.path): j for j in catalog.jobs.values()}
    for issue in report.errors:
        if issue.path not in job_files:
            continue
        loaded = by_path.get(issue.path)
        path = Path(issue.path)
        job_id = loaded.job_id if loaded is not None else path.stem
        stage = loaded.stage if loaded is not None else _stage_of(root, path)
        broken = report.broken.setdefault(job_id, BrokenJob(job_id, stage, path, []))
        broken.issues.append(issue)
    # Lineage over the good stage jobs; a problem breaks the jobs it names (and only those).
    while True:
        good = [
            j for j in catalog.jobs.values() if j.stage in STAGES and j.job_id not in report.broken
        ]
        lineage = infer_lineage(job_io(j.job_id, j.stage, j.jobdef, str(j.path)) for j in good)
        problems = lineage_problems(lineage)
        if not problems:
            report.lineage = lineage
            break
        for jobs, message in problems:
            for jid in sorted(jobs):
                loaded = catalog.jobs[jid]
                issue = Issue(path=str(loaded.path), line=1, col=1, code="L074", message=message)
                if issue not in report.issues:
                    report.issues.append(issue)
                report.broken.setdefault(
                    jid, BrokenJob(jid, loaded.stage, loaded.path, [])
                ).issues.append(issue)
    report.registry_sha256 = registry_sha256(root)
    return report
