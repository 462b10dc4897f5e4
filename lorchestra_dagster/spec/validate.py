"""Validate a whole catalog in one pass and report every issue (codes: ``spec.issues``).

Schema problems come from loading (``catalog.load_catalog``). The checks here
read the *raw* YAML of every job, so a job with a schema error still gets its
references, callables and methods checked: one run shows everything.

The checks are ordered tuples of pure rules, as sqlglot's optimizer is: a rule
takes what it checks (the catalog, a job, a step) and yields ``Finding``s;
``validate_loaded`` runs them all and turns each finding into an ``Issue`` at
its YAML position. ``CATALOG_RULES`` run once, ``JOB_RULES`` per job file, and
the param rules of each op are keyed by its Step model (``PARAM_RULES``), so
an op's checks live next to each other and a new op adds an entry, not a
branch on its name.

Registries the spec layer cannot know (registered callables and their traits,
transform ids, the view SQL check) are passed in by the caller, which keeps
this module free of imports from the layers above it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from lorchestra_dagster.spec import secrets
from lorchestra_dagster.spec.catalog import Catalog, CatalogFile, load_catalog
from lorchestra_dagster.spec.issues import Issue
from lorchestra_dagster.spec.job_rules import JOB_RULES, PARAM_RULES
from lorchestra_dagster.spec.lineage import find_cycle
from lorchestra_dagster.spec.loops import item_path
from lorchestra_dagster.spec.refs import parse_ref
from lorchestra_dagster.spec.rule_base import Context, Finding, Job, walk_strings
from lorchestra_dagster.spec.traits import CallableTraits
from lorchestra_dagster.spec.yamlpos import YamlPath

__all__ = ["CATALOG_RULES", "JOB_RULES", "PARAM_RULES", "validate_catalog", "validate_loaded"]


def validate_catalog(
    dir: str | Path,  # the public name the brief fixes
    *,
    callables: Mapping[str, CallableTraits] | None = None,
    transform_ids: set[str] | None = None,
) -> list[Issue]:
    """Every issue of the catalog at ``dir``, sorted by file and position.

    Args:
        callables: registered callables and their traits; None skips the callable checks.
        transform_ids: known transform ids; None skips the transform check.
    """
    return validate_loaded(load_catalog(dir), callables=callables, transform_ids=transform_ids)


def validate_loaded(
    cat: Catalog,
    *,
    callables: Mapping[str, CallableTraits] | None = None,
    transform_ids: set[str] | None = None,
    view_sql: Callable[[str, str], None] | None = None,
) -> list[Issue]:
    """Like ``validate_catalog`` for a catalog already loaded.

    ``view_sql(sql, dialect)`` raises a ``LorchestraError`` on ``bq.execute`` SQL the
    data plane would refuse (its message becomes the L047 issue); None skips that check.
    """
    ctx = Context(cat, callables, transform_ids, view_sql)
    issues = list(cat.issues)
    for rule in CATALOG_RULES:
        issues.extend(_issue(finding) for finding in rule(ctx))
    unique = {(i.path, i.line, i.col, i.code, i.message): i for i in issues}
    return sorted(unique.values(), key=lambda i: i.sort_key)


def _issue(finding: Finding) -> Issue:
    doc = finding.file.doc
    assert doc is not None, "rules only read files that parsed"
    pos = doc.pos(finding.path)
    return Issue(
        path=str(finding.file.path),
        line=pos.line,
        col=pos.col,
        code=finding.code,
        message=finding.message,
    )


# -- catalog rules --------------------------------------------------------------------------


def jobs(ctx: Context) -> Iterator[Finding]:
    """Every job file whose steps are a list, through ``JOB_RULES``."""
    for f in ctx.cat.files:
        data = f.doc.data if f.doc is not None and f.kind == "job" else None
        if isinstance(data, dict) and isinstance(data.get("steps"), list):
            job = Job.of(ctx, f, data)
            for rule in JOB_RULES:
                yield from rule(job)


def secret_values(ctx: Context) -> Iterator[Finding]:
    """L060/L061: no literal secret in any file of the catalog."""
    for f in ctx.cat.files:
        if f.doc is not None:
            for code, path, _pos, message in secrets.scan(f.doc):
                yield Finding(f, path, code, message)


def pipelines(ctx: Context) -> Iterator[Finding]:
    """L050-L052: pipelines name what exists, loops read earlier stages, no cycles."""
    edges: dict[str, list[tuple[str, CatalogFile, YamlPath]]] = {}
    for f in ctx.cat.files:
        if f.kind != "pipeline" or f.doc is None:
            continue
        pid = f.doc.data.get("pipeline_id")
        stages = f.doc.data.get("stages")
        if not isinstance(pid, str) or not isinstance(stages, list):
            continue
        edges.setdefault(pid, [])
        earlier: set[str] = set()
        for si, stage in enumerate(stages):
            loop = stage.get("loop") if isinstance(stage, dict) else None
            base: YamlPath = ("stages", si, "loop") if isinstance(loop, dict) else ("stages", si)
            if isinstance(loop, dict):
                yield from _loop(f, base, loop, earlier)
                members = loop.get("jobs")
            else:
                members = stage.get("jobs") if isinstance(stage, dict) else None
            if not isinstance(members, list):
                continue
            earlier.update(j for j in members if isinstance(j, str))
            for ji, name in enumerate(members):
                if not isinstance(name, str):
                    continue
                path = (*base, "jobs", ji)
                kind = ctx.ids.get(name)
                if kind is None:
                    msg = f"pipeline {pid!r} names {name!r}, not in the catalog"
                    yield Finding(f, path, "L050", msg)
                elif kind == "pipeline":
                    edges[pid].append((name, f, path))
    yield from _cycles(edges)


def _loop(
    f: CatalogFile, base: YamlPath, loop: dict[str, Any], earlier: set[str]
) -> Iterator[Finding]:
    """L052: ``over`` reads a job of an earlier stage; payload refs are @item/@payload/@ctx."""
    over = loop.get("over")
    ref = parse_ref(over) if isinstance(over, str) else None
    source = ref.step_id if ref is not None and ref.scope == "run" else None
    if source is None:
        msg = f"loop over {over!r}: expected @run.<job_id>.items"
        yield Finding(f, (*base, "over"), "L052", msg)
    elif source not in earlier:
        yield Finding(
            f,
            (*base, "over"),
            "L052",
            f"loop over {over!r}: job {source!r} is not in an earlier stage of this "
            f"pipeline (earlier: {', '.join(sorted(earlier)) or 'none'})",
        )
    for path, value in walk_strings(loop.get("payload"), (*base, "payload")):
        if not value.startswith("@"):
            continue
        ref = parse_ref(value)
        if item_path(value) is None and (ref is None or ref.scope not in ("payload", "ctx")):
            yield Finding(
                f,
                path,
                "L035",
                f"loop payload {value!r}: use @item.<path>, @payload.<path> or a literal",
            )


def _cycles(edges: Mapping[str, Iterable[tuple[str, CatalogFile, YamlPath]]]) -> Iterator[Finding]:
    """L051: every independent cycle once: report one, cut its first edge, look again."""
    graph = {node: {e[0] for e in out} for node, out in edges.items()}
    while (cycle := find_cycle(graph)) is not None:
        first, nxt = cycle[0], cycle[1]
        _name, f, path = next(e for e in edges[first] if e[0] == nxt)
        yield Finding(f, path, "L051", f"cycle between pipelines: {' -> '.join(cycle)}")
        graph[first].discard(nxt)


CatalogRule = Callable[[Context], Iterator[Finding]]
#: The rules of one validation, in order (``validate_loaded`` runs them).
CATALOG_RULES: tuple[CatalogRule, ...] = (jobs, secret_values, pipelines)
