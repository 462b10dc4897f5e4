"""``--select``: which jobs of the catalog a run takes, in dbt's words.

A selection is one or more tokens (space- or comma-separated):

- ``ingest_stripe_customers``: that job; ``ingest_stripe_*``: a glob of job ids;
- ``stage:canonize``: every job of a stage;
- ``+job``: the job and everything upstream of it; ``job+``: and everything
  downstream; ``+job+``: both.

Up- and downstream follow the inferred lineage (what each job reads and
writes, plus ``deps:``), the same edges the Dagster asset graph draws. Pure:
no I/O, so it tests in milliseconds.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Mapping

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.naming import STAGES

_SPLIT = re.compile(r"[\s,]+")


def _closure(start: set[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        jid = todo.pop()
        for nxt in edges.get(jid, ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def resolve_selection(
    expression: str | Iterable[str],
    stages: Mapping[str, str],
    deps: Mapping[str, Iterable[str]],
) -> list[str]:
    """Job ids a selection names, sorted by stage order then id.

    Args:
        expression: the ``--select`` value(s).
        stages: ``{job_id: stage}`` of the jobs that may be selected.
        deps: ``{job_id: upstream job ids}`` (the lineage).

    Raises ``PermanentError`` naming a token that selects nothing, with near
    job ids or stages.
    """
    texts = [expression] if isinstance(expression, str) else list(expression)
    tokens = [t for text in texts for t in _SPLIT.split(text) if t]
    if not tokens:
        raise PermanentError("--select is empty: name a job, stage:<name>, +job or job+")
    downstream: dict[str, set[str]] = {}
    for jid, ups in deps.items():
        for up in ups:
            downstream.setdefault(up, set()).add(jid)
    picked: set[str] = set()
    for token in tokens:
        body = token.strip("+")
        with_up, with_down = token.startswith("+"), token.endswith("+") and len(token) > 1
        if body.startswith("stage:"):
            stage = body.split(":", 1)[1]
            base = {j for j, s in stages.items() if s == stage}
            known = sorted(set(stages.values()))
            what = f"stage {stage!r}"
        else:
            base = {j for j in stages if fnmatch.fnmatchcase(j, body)}
            known = sorted(stages)
            what = f"job {body!r}"
        if not base:
            near = difflib.get_close_matches(body.removeprefix("stage:"), known, n=3)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise PermanentError(f"--select {token!r}: no {what} in the catalog{hint}")
        picked |= base
        if with_up:
            picked |= _closure(base, deps) & set(stages)
        if with_down:
            picked |= _closure(base, downstream) & set(stages)

    def order(jid: str) -> tuple[int, str]:
        stage = stages[jid]
        return (STAGES.index(stage) if stage in STAGES else len(STAGES), jid)

    return sorted(picked, key=order)
