"""The shape of the bench document and the "last results" table of bench/README.md.

Pure functions, no measuring: bench/run.py measures, this module turns its numbers into
one JSON document (every figure with its baseline, ratio, goal, met or not, a note on a
miss and the command that reproduces it) and into markdown. Kept apart so the shaping is
unit-tested in milliseconds (tests/bench/test_report.py) while the figures are not
asserted anywhere.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any

START, END = "<!-- results:start -->", "<!-- results:end -->"
HEADER = [
    "| figure | what | value | goal | met | size | measured at | note |",
    "|---|---|---|---|---|---|---|---|",
]
OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
}


def check(what: str, value: float | None, op: str, target: float) -> dict[str, Any]:
    """One goal of a figure: ``value op target``; a value that could not be measured is
    reported as ``None`` and never counts as met."""
    if op not in OPS:
        raise ValueError(f"unknown comparison {op!r} (known: {', '.join(OPS)})")
    met = value is not None and OPS[op](value, target)
    return {"what": what, "value": value, "goal": f"{op} {target:g}", "met": met}


def figure(
    fid: str,
    title: str,
    checks: list[dict[str, Any]],
    *,
    baseline: str,
    command: str,
    size: str,
    measured: dict[str, Any],
    why_missed: str = "",
) -> dict[str, Any]:
    """A measured figure. Its ``ratio`` and ``goal`` are the first check's; it is met when
    every check is. A missed figure must say why and what would close the gap.

    Raises:
        ValueError: no checks, or a missed figure without ``why_missed``.
    """
    if not checks:
        raise ValueError(f"{fid}: a figure needs at least one check")
    met = all(c["met"] for c in checks)
    if not met and not why_missed.strip():
        raise ValueError(f"{fid}: a missed figure must say why and what would close the gap")
    return {
        "id": fid,
        "title": title,
        "ratio": checks[0]["value"],
        "goal": checks[0]["goal"],
        "met": met,
        "checks": checks,
        "baseline": baseline,
        "size": size,
        "command": command,
        "note": "" if met else why_missed.strip(),
        "measured": measured,
    }


def failed(fid: str, title: str, error: str, command: str) -> dict[str, Any]:
    """A figure whose run broke: no ratio, not met, the error's head as its note."""
    head = "\n".join(error.strip().splitlines()[:3])[:600]
    return {
        "id": fid,
        "title": title,
        "ratio": None,
        "goal": None,
        "met": False,
        "checks": [],
        "baseline": None,
        "size": None,
        "command": command,
        "note": f"not measured: {head}",
        "measured": {"error": error[-4000:]},
    }


def document(
    started_at: str,
    machine: dict[str, Any],
    options: dict[str, Any],
    figures: list[dict[str, Any]],
    elapsed_s: dict[str, float],
) -> dict[str, Any]:
    """The one JSON document of a bench run; ``summary`` is the closing note, a line per
    figure with its ratio, goal and whether it was met."""
    return {
        "started_at": started_at,
        "machine": machine,
        "options": options,
        "figures": {f["id"]: f for f in figures},
        "elapsed_s": elapsed_s,
        "all_met": all(f["met"] for f in figures),
        "summary": [summary_line(f) for f in figures],
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def summary_line(fig: dict[str, Any]) -> str:
    goals = "; ".join(f"{c['what']} {_fmt(c['value'])} ({c['goal']})" for c in fig["checks"])
    verdict = "met" if fig["met"] else "MISSED"
    line = f"{fig['id']} {fig['title']}: {goals or 'not measured'} -> {verdict}"
    return f"{line}; {fig['note']}" if fig["note"] else line


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def table_rows(doc: dict[str, Any]) -> dict[str, str]:
    """One markdown row per figure of ``doc``, keyed by figure id."""
    rows: dict[str, str] = {}
    for fid, fig in doc["figures"].items():
        checks = fig["checks"] or [{"what": "", "value": None, "goal": "", "met": False}]
        value = " / ".join(_fmt(c["value"]) for c in checks)
        goal = " / ".join(c["goal"] for c in checks)
        what = " / ".join(c["what"] for c in checks)
        met = "yes" if fig["met"] else "**no**"
        rows[fid] = (
            f"| {fid} | {_cell(fig['title'] + ': ' + what)} | {value} | {_cell(goal)} | {met} "
            f"| {_cell(fig['size'] or '')} | {doc['started_at']} | {_cell(fig['note'])} |"
        )
    return rows


def update_readme(path: Path, doc: dict[str, Any]) -> None:
    """Replace this run's rows of the table between the markers; rows of figures not run
    this time (``ONLY=``) stay as they were, so the table shows each figure's latest."""
    text = path.read_text()
    if START not in text:
        text += f"\n## Last results\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    body, tail = rest.split(END, 1)
    rows: dict[str, str] = {}
    for line in body.splitlines():
        if line.startswith("| P"):
            rows[line.split("|")[1].strip()] = line
    rows.update(table_rows(doc))
    ordered = [rows[k] for k in sorted(rows)]
    path.write_text(f"{head}{START}\n" + "\n".join([*HEADER, *ordered]) + f"\n{END}{tail}")
