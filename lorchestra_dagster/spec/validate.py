"""Validate a whole catalog in one pass and report every issue (codes: ``spec.issues``).

Schema problems come from loading (``catalog.load_catalog``). The checks here
read the *raw* YAML of every job, so a job with a schema error still gets its
references, callables and methods checked: one run shows everything.

Registries the spec layer cannot know (registered callables, transform ids,
plan methods) are passed in by the caller, which keeps this module free of
imports from the layers above it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lorchestra_dagster import naming
from lorchestra_dagster.spec import secrets
from lorchestra_dagster.spec.catalog import Catalog, CatalogFile, load_catalog
from lorchestra_dagster.spec.issues import Issue
from lorchestra_dagster.spec.legacy import REFUSED_PARAMS
from lorchestra_dagster.spec.lineage import find_cycle
from lorchestra_dagster.spec.loops import item_path
from lorchestra_dagster.spec.models import OP_OUTPUTS, JobDef
from lorchestra_dagster.spec.refs import Ref, looks_like_ref, parse_ref
from lorchestra_dagster.spec.yamlpos import YamlPath
from lorchestra_dagster.storacle.params import PER_ITEM_METHODS, PLAN_PARAMS


def validate_catalog(
    dir: str | Path,  # the public name the brief fixes
    *,
    callables: set[str] | None = None,
    transform_ids: set[str] | None = None,
) -> list[Issue]:
    """Every issue of the catalog at ``dir``, sorted by file and position.

    Args:
        callables: registered callable names; None skips the unknown-callable check.
        transform_ids: known transform ids; None skips the transform check.
    """
    return validate_loaded(
        load_catalog(dir),
        callables=callables,
        transform_ids=transform_ids,
    )


def validate_loaded(
    cat: Catalog,
    *,
    callables: set[str] | None = None,
    transform_ids: set[str] | None = None,
    view_sql: Callable[[str, str], None] | None = None,
    per_item_callables: set[str] | None = None,
) -> list[Issue]:
    """Like ``validate_catalog`` for a catalog already loaded.

    ``view_sql(sql, dialect)`` raises on ``bq.execute`` SQL the data plane would
    refuse X; None skips that check.
    """
    checker = _Checker(
        cat,
        callables,
        transform_ids,
    )
    checker.view_sql = view_sql
    checker.per_item = per_item_callables or set()
    issues = list(cat.issues)
    issues.extend(checker.run())
    unique = {(i.path, i.line, i.col, i.code, i.message): i for i in issues}
    return sorted(unique.values(), key=lambda i: i.sort_key)


def _walk_strings(value: Any, path: YamlPath) -> Iterator[tuple[YamlPath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_strings(v, (*path, i))


def _literal(value: Any) -> str | None:
    """A plain string value (not a reference), else None: references are checked at compile."""
    return value if isinstance(value, str) and not value.startswith("@") else None


class _Checker:
    def __init__(
        self,
        cat: Catalog,
        callables: set[str] | None,
        transform_ids: set[str] | None,
    ) -> None:
        self.cat = cat
        self.callables = callables
        self.transform_ids = transform_ids
        self.view_sql: Callable[[str, str], None] | None = None
        self.per_item: set[str] = set()
        self.steps: dict[str, dict[str, Any]] = {}
        self.out: list[Issue] = []
        self.step_ops: dict[str, Any] = {}
        self.ids = self._declared_ids()
        self.job_stage = {
            f.doc.data["job_id"]: (f.rel.parts[0] if len(f.rel.parts) > 1 else "other")
            for f in cat.files
            if f.kind == "job" and f.doc is not None and isinstance(f.doc.data.get("job_id"), str)
        }

    def _declared_ids(self) -> dict[str, str]:
        """Every job/pipeline id any file declares (valid or not), mapped to its kind."""
        ids: dict[str, str] = {}
        for f in self.cat.files:
            if f.doc is None or not isinstance(f.doc.data, dict):
                continue
            key = {"job": "job_id", "pipeline": "pipeline_id"}.get(f.kind)
            if key and isinstance(f.doc.data.get(key), str):
                ids.setdefault(f.doc.data[key], f.kind)
        return ids

    def add(
        self, f: CatalogFile, path: YamlPath, code: str, message: str, *, key: bool = False
    ) -> None:
        assert f.doc is not None
        pos = f.doc.pos(path, key=key)
        self.out.append(
            Issue(path=str(f.path), line=pos.line, col=pos.col, code=code, message=message)
        )

    def run(self) -> list[Issue]:
        for f in self.cat.files:
            if f.doc is None:
                continue
            if f.kind == "job" and isinstance(f.doc.data, dict):
                self.check_job(f, f.doc.data)
            for code, path, _pos, message in secrets.scan(f.doc):
                self.add(f, path, code, message)
        self.check_pipelines()
        return self.out

    # -- jobs ---------------------------------------------------------------

    def check_job(self, f: CatalogFile, data: dict[str, Any]) -> None:
        steps = data.get("steps")
        if not isinstance(steps, list):
            return
        extras = {k: v for k, v in data.items() if k not in JobDef.KNOWN_KEYS}
        if isinstance(data.get("extras"), dict):
            extras.update(data["extras"])
        for key, value in extras.items():
            if isinstance(value, str) and value.endswith((".yaml", ".yml")):
                if not (self.cat.root / value).is_file():
                    self.add(
                        f,
                        (key,) if key in data else ("extras", key),
                        "L037",
                        f"extra {key!r} names {value!r}, which does not exist under the "
                        f"catalog {self.cat.root}",
                    )
        self.check_deps(f, data.get("deps"))
        live = data.get("backfill_of")
        if isinstance(live, str) and self.job_stage.get(live) is None:
            self.add(f, ("backfill_of",), "L046", f"backfill_of names {live!r}: no job {live!r}")
        order: dict[str, int] = {}
        self.step_ops = {}
        self.steps = {}
        for i, step in enumerate(steps):
            sid = step.get("step_id") if isinstance(step, dict) else None
            if not isinstance(sid, str):
                continue
            if sid in order:
                self.add(
                    f,
                    ("steps", i, "step_id"),
                    "L022",
                    f"duplicate step id {sid!r} (first at steps[{order[sid]}])",
                )
            else:
                order[sid] = i
                self.step_ops[sid] = step.get("op")
                self.steps[sid] = step
        for i, step in enumerate(steps):
            if not isinstance(step, dict):
                continue
            sid = step.get("step_id")
            self.check_refs(f, i, sid, step, order, extras)
            params = step.get("params")
            if isinstance(params, dict):
                self.check_params(f, i, step.get("op"), params)

    def check_deps(self, f: CatalogFile, deps: Any) -> None:
        """Explicit ``deps`` must name existing jobs as ``<stage>/<job_id>``."""
        if not isinstance(deps, list):
            return
        for n, dep in enumerate(deps):
            if not isinstance(dep, str):
                continue
            stage, _, job_id = dep.rpartition("/")
            actual = self.job_stage.get(job_id)
            if actual is None:
                self.add(f, ("deps", n), "L046", f"deps names {dep!r}: no job {job_id!r}")
            elif stage != actual:
                self.add(
                    f,
                    ("deps", n),
                    "L046",
                    f"deps names {dep!r} but job {job_id!r} is in stage {actual!r} "
                    f"(write '{actual}/{job_id}')",
                )

    def check_refs(
        self,
        f: CatalogFile,
        i: int,
        sid: Any,
        step: dict[str, Any],
        order: dict[str, int],
        extras: dict[str, Any],
    ) -> None:
        targets: list[tuple[YamlPath, str]] = []
        if isinstance(step.get("if"), str):
            targets.append((("steps", i, "if"), step["if"]))
        targets.extend(_walk_strings(step.get("params"), ("steps", i, "params")))
        for path, value in targets:
            if not looks_like_ref(value):
                continue
            ref = parse_ref(value)
            if ref is None:
                self.add(
                    f,
                    path,
                    "L035",
                    f"malformed reference {value!r} (forms: @ctx.a.b, @payload.a, @self.a, "
                    "@run.<step>.items[0].x, optional trailing '?')",
                )
                continue
            if ref.scope == "self":
                head = ref.path[0]
                if head not in extras:
                    known = ", ".join(sorted(extras)) or "none"
                    self.add(f, path, "L034", f"{ref.raw}: no extra {head!r} (extras: {known})")
            if ref.scope != "run":
                continue
            if path[-1] == "if":
                self.add(
                    f,
                    path,
                    "L036",
                    f"'if' is decided at compile time and cannot use {ref.raw}; "
                    "use @ctx/@payload/@self",
                )
                continue
            target = ref.step_id
            if target == "envelope":
                continue
            if target not in order:
                known = ", ".join(order) or "none"
                self.add(f, path, "L031", f"{ref.raw}: no step {target!r} (steps: {known})")
            elif target == sid:
                self.add(f, path, "L033", f"{ref.raw}: a step cannot read its own output")
            elif order[target] > i:
                self.add(
                    f,
                    path,
                    "L032",
                    f"{ref.raw}: step {target!r} runs later (steps[{order[target]}]); "
                    "a step can only read earlier steps",
                )
            else:
                self.check_output_key(f, path, ref)

    def check_output_key(self, f: CatalogFile, path: YamlPath, ref: Ref) -> None:
        """``@run.<step>.<key>``: the key must be one the step's op outputs."""
        op = self.step_ops.get(ref.step_id) if ref.step_id is not None else None
        outputs = OP_OUTPUTS.get(op) if isinstance(op, str) else None
        key = ref.subpath[0] if ref.subpath else None
        if outputs is not None and isinstance(key, str) and key not in outputs:
            self.add(
                f,
                path,
                "L038",
                f"{ref.raw}: a {op} step outputs {', '.join(sorted(outputs))}, not {key!r}",
            )

    def check_params(self, f: CatalogFile, i: int, op: Any, params: dict[str, Any]) -> None:
        base: YamlPath = ("steps", i, "params")
        if op == "call":
            name = _literal(params.get("callable"))
            if name is not None and self.callables is not None and name not in self.callables:
                known = ", ".join(sorted(self.callables)) or "none"
                self.add(
                    f, (*base, "callable"), "L040", f"unknown callable {name!r} (known: {known})"
                )
            for key, why in REFUSED_PARAMS.get(name or "", {}).items():
                if key in params:
                    self.add(f, (*base, key), "L048", f"{name} param {key!r}: {why}")
            config = params.get("config")
            if name == "canonizer" and isinstance(config, dict) and self.transform_ids is not None:
                tid = _literal(config.get("transform_id"))
                ids = {naming.transform_id(t) for t in self.transform_ids}
                if tid is not None and naming.transform_id(tid) not in ids:
                    self.add(
                        f,
                        (*base, "config", "transform_id"),
                        "L044",
                        f"unknown transform id {tid!r} (no "
                        f"transforms/<domain>/<name>/<version>/spec.meta.yaml declares it)",
                    )
        elif op == "plan.build":
            method = _literal(params.get("method"))
            if method is None:
                return
            if method not in PLAN_PARAMS:
                known = ", ".join(sorted(PLAN_PARAMS))
                self.add(f, (*base, "method"), "L041", f"unknown plan method {method!r} ({known})")
                return
            if method in PER_ITEM_METHODS and params.get("table") in (None, ""):
                self.check_per_item(f, base, method, params.get("items"))
                return
            for name in PLAN_PARAMS[method].required_params():
                if params.get(name) in (None, "", []):
                    self.add(f, base, "L043", f"plan.build {method} needs param {name!r}")
            if method == "bq.execute":
                self.check_view_sql(f, base, params.get("items"))
        elif op == "job.run":
            jid = _literal(params.get("job_id"))
            if jid is not None and self.ids.get(jid) != "job":
                self.add(f, (*base, "job_id"), "L045", f"job.run names unknown job {jid!r}")

    def check_per_item(self, f: CatalogFile, base: YamlPath, method: str, items: Any) -> None:
        """No ``table`` param: every item must carry its target (the original's per-item mode).

        Literal items are checked one by one; ``@run.<step>.items`` is accepted from
        a callable registered with ``per_item_targets`` or a canonizer running a
        ``projection/`` transform; anything else cannot be known to carry one.
        """
        if isinstance(items, list) and items:
            for n, item in enumerate(items):
                if not isinstance(item, dict) or not item.get("table") or "rows" not in item:
                    self.add(
                        f,
                        (*base, "items", n),
                        "L043",
                        f"plan.build {method} needs param 'table', or 'table' and 'rows' "
                        f"per item (item {n} has neither)",
                    )
            return
        ref = parse_ref(items) if isinstance(items, str) else None
        producer = self.steps.get(ref.step_id or "") if ref and ref.scope == "run" else None
        fp = producer.get("params") if isinstance(producer, dict) else None
        if isinstance(fp, dict) and producer is not None and producer.get("op") == "call":
            name = fp.get("callable")
            config = fp.get("config") if isinstance(fp.get("config"), dict) else {}
            tid = config.get("transform_id") if isinstance(config, dict) else None
            if name in self.per_item or (
                name == "canonizer" and isinstance(tid, str) and tid.startswith("projection/")
            ):
                return
        known = ", ".join(sorted(self.per_item)) or "none"
        self.add(
            f,
            base,
            "L043",
            f"plan.build {method} needs param 'table' (or items that carry it per item, "
            f"from a callable that packages targets: {known}, or a projection/ transform)",
        )

    def check_view_sql(self, f: CatalogFile, base: YamlPath, items: Any) -> None:
        """L047: literal ``bq.execute`` SQL must be one CREATE [OR REPLACE] VIEW."""
        if self.view_sql is None or not isinstance(items, list):
            return
        for n, item in enumerate(items):
            if not isinstance(item, dict) or _literal(item.get("sql")) is None:
                continue
            dialect = _literal(item.get("dialect")) or "bigquery"
            try:
                self.view_sql(item["sql"], dialect)
            except Exception as err:  # noqa: BLE001 - the checker's message is the issue; nothing is lost
                self.add(f, (*base, "items", n, "sql"), "L047", str(err))

    # -- pipelines ----------------------------------------------------------

    def check_pipelines(self) -> None:
        edges: dict[str, list[tuple[str, CatalogFile, YamlPath]]] = {}
        for f in self.cat.files:
            if f.kind != "pipeline" or f.doc is None:
                continue
            data = f.doc.data
            pid = data.get("pipeline_id")
            stages = data.get("stages")
            if not isinstance(pid, str) or not isinstance(stages, list):
                continue
            edges.setdefault(pid, [])
            earlier: set[str] = set()
            for si, stage in enumerate(stages):
                loop = stage.get("loop") if isinstance(stage, dict) else None
                base: YamlPath = (
                    ("stages", si, "loop") if isinstance(loop, dict) else ("stages", si)
                )
                if isinstance(loop, dict):
                    self.check_loop(f, base, loop, earlier)
                    jobs = loop.get("jobs")
                else:
                    jobs = stage.get("jobs") if isinstance(stage, dict) else None
                if not isinstance(jobs, list):
                    continue
                earlier.update(j for j in jobs if isinstance(j, str))
                for ji, name in enumerate(jobs):
                    if not isinstance(name, str):
                        continue
                    path = (*base, "jobs", ji)
                    kind = self.ids.get(name)
                    if kind is None:
                        self.add(
                            f, path, "L050", f"pipeline {pid!r} names {name!r}, not in the catalog"
                        )
                    elif kind == "pipeline":
                        edges[pid].append((name, f, path))
        self._report_cycles(edges)

    def check_loop(
        self, f: CatalogFile, base: YamlPath, loop: dict[str, Any], earlier: set[str]
    ) -> None:
        """L052: ``over`` reads a job of an earlier stage; payload refs are @item/@payload/@ctx."""
        over = loop.get("over")
        ref = parse_ref(over) if isinstance(over, str) else None
        source = ref.step_id if ref is not None and ref.scope == "run" else None
        if source is None:
            self.add(
                f, (*base, "over"), "L052", f"loop over {over!r}: expected @run.<job_id>.items"
            )
        elif source not in earlier:
            self.add(
                f,
                (*base, "over"),
                "L052",
                f"loop over {over!r}: job {source!r} is not in an earlier stage of this "
                f"pipeline (earlier: {', '.join(sorted(earlier)) or 'none'})",
            )
        payload = loop.get("payload")
        for path, value in _walk_strings(payload, (*base, "payload")):
            if not value.startswith("@"):
                continue
            ref = parse_ref(value)
            ok = item_path(value) is not None or (
                ref is not None and ref.scope in ("payload", "ctx")
            )
            if not ok:
                self.add(
                    f,
                    path,
                    "L035",
                    f"loop payload {value!r}: use @item.<path>, @payload.<path> or a literal",
                )

    def _report_cycles(self, edges: dict[str, list[tuple[str, CatalogFile, YamlPath]]]) -> None:
        """Every independent cycle once: report one, cut its first edge, look again."""
        graph = {node: {e[0] for e in out} for node, out in edges.items()}
        while (cycle := find_cycle(graph)) is not None:
            first, nxt = cycle[0], cycle[1]
            _name, f, path = next(e for e in edges[first] if e[0] == nxt)
            self.add(f, path, "L051", f"cycle between pipelines: {' -> '.join(cycle)}")
            graph[first].discard(nxt)
