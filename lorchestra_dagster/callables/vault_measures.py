"""``vault_measures``: scores over time per client, with the client's open safety alerts.

Input is ``proj_measurements`` (one row per scored measure per submission, joined
to its client), ``proj_clients`` and ``proj_alerts``. It writes
``clients/<folder>/measures.md`` (the client's open alerts, then a table of scores
by date) and ``clients/<folder>/measures.png`` (see :mod:`.charts`; open alerts are
marked on it). ``alerts.md`` is :mod:`.vault_alerts`'.

Drawing a chart is most of the project stage's cost, so ``vault_measures`` is
incremental: the job hands it the render state it recorded last time
(``derived.vault_renders``: per client, the sha256 of what the files were drawn
from) and it draws only the clients whose inputs changed. Being pure, it cannot
record anything itself; it returns the new state rows (``renders``) and the job
upserts them after the files were written, so a failed write is redrawn next run.
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict
from datetime import date
from functools import cache
from importlib import metadata
from typing import Any

from lorchestra_dagster.callables.base import CallContext, paged, register, result
from lorchestra_dagster.callables.charts import ChartInstrument, chart_instruments, render_chart
from lorchestra_dagster.callables.score_notes import (
    BAND_UNCERTAIN,
    PRORATED,
    ScaleNote,
    about_section,
    scale_notes,
    score_marks,
    severity_cell,
)
from lorchestra_dagster.callables.vault_alerts import (
    alert_rows,
    open_by_client,
    open_section,
    shown,
)
from lorchestra_dagster.callables.vault_common import (
    as_json,
    day,
    front_matter,
    index_clients,
    latest,
    md_table,
    require_list,
    text_item,
)
from lorchestra_dagster.callables.vault_markdown import display_name
from lorchestra_dagster.errors import PermanentError, fingerprint
from lorchestra_dagster.spec.compile import canonical_json

#: Bump when measures.md or measures.png come out differently from the same rows: the
#: next run redraws every client (the installed matplotlib's version counts too).
RENDERER_VERSION = "measures/3"
#: Clients drawn per page of ``vault_measures``'s (paged) result.
PAGE_CLIENTS = 100
#: The ``artifact`` of ``vault_measures``'s state rows (measures.md and measures.png).
ARTIFACT = "measures"
#: The client columns the files show (name, folder, front matter); others never redraw.
CLIENT_FIELDS = ("client_id", "idem_key", "first_name", "last_name", "_folder")


def fmt_score(value: Any) -> str:
    """``12`` for whole numbers, ``12.5`` otherwise, empty when missing."""
    if value is None or value == "":
        return ""
    try:
        num = float(value)
    except (TypeError, ValueError):
        raise PermanentError(f"value_numeric ({fingerprint(value)}) is not a number") from None
    return str(int(num)) if num.is_integer() else f"{num:.2f}".rstrip("0")


def flag_codes(value: Any) -> list[str]:
    """Flag codes of an observation (``flags`` is a list of ``{code, ...}`` or of codes)."""
    flags = as_json(value)
    if flags in (None, "", {}):
        return []
    if isinstance(flags, dict):
        flags = [flags]
    if not isinstance(flags, list):
        raise PermanentError(f"observation flags must be a JSON list, got {type(flags).__name__}")
    codes = []
    for f in flags:
        code = f.get("code") if isinstance(f, dict) else f
        if code:
            codes.append(str(code))
    return sorted(set(codes))


def _check_rows(rows: list[dict[str, Any]]) -> None:
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or not row.get("idem_key") or not row.get("measure_code"):
            raise PermanentError(f"measurements item {n} needs idem_key and measure_code")


def _sort_key(row: dict[str, Any]) -> tuple[str, str, str]:
    return (str(row.get("occurred_at") or ""), str(row.get("measure_code")), str(row["idem_key"]))


def _total_cell(row: dict[str, Any]) -> str:
    """``9 (mild; prorated, band uncertain)``: the score, its band and its marks."""
    sev = row.get("severity_label") or row.get("severity_code")
    marks = ", ".join(score_marks(row))
    inside = "; ".join(x for x in (sev, marks) if x)
    return fmt_score(row.get("value_numeric")) + (f" ({inside})" if inside else "")


def _score_cell(row: dict[str, Any]) -> str:
    marks = [m for m in score_marks(row) if m == PRORATED]
    return fmt_score(row.get("value_numeric")) + (f" ({marks[0]})" if marks else "")


def _measures_md(
    client: dict[str, Any],
    rows: list[dict[str, Any]],
    charted: tuple[ChartInstrument, ...],
    notes: dict[str, ScaleNote],
    alerts: list[dict[str, Any]],
) -> str:
    meta = {
        "source_entity": "observation",
        "record_id": client["client_id"],
        "idem_key": client.get("idem_key"),
        "projected_at": latest(r.get("updated_at") for r in rows),
        "client_folder": client["_folder"],
        "observations": len(rows),
    }
    totals: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["measure_code"] in {i.measure_code for i in charted}:
            cell = _total_cell(r)
            totals[day(r.get("occurred_at")) or "undated"][r["measure_code"]].append(cell)
    parts = [
        front_matter(meta),
        f"\n# Measures: {display_name(client)}\n\n",
        open_section(alerts),
        "\n![PHQ-9, GAD-7 and PSS-10 totals over time, with band thresholds and open "
        "alerts](measures.png)\n",
        "\n## Totals over time\n\n",
    ]
    if totals:
        parts.append(
            md_table(
                [
                    "Date",
                    *[
                        i.title.removesuffix(" total") + (" (local bands)" if i.local_bands else "")
                        for i in charted
                    ],
                ],
                [
                    [d, *["; ".join(totals[d].get(i.measure_code, [])) for i in charted]]
                    for d in sorted(totals)
                ],
            )
        )
    else:
        parts.append("_No PHQ-9, GAD-7 or PSS-10 totals on record._\n")
    parts.append("\n## All scores\n\n")
    parts.append(
        md_table(
            ["Date", "Instrument", "Measure", "Score", "Severity", "Flags"],
            [
                [
                    day(r.get("occurred_at")),
                    r.get("instrument_code"),
                    r["measure_code"],
                    _score_cell(r),
                    severity_cell(r, notes),
                    ", ".join(flag_codes(r.get("flags"))),
                ]
                for r in rows
            ],
        )
    )
    parts.append(about_section(rows, notes))
    return "".join(parts)


def _series(rows: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """Chart points ``(date, score[, mark])``; mark is ``prorated`` or ``crosses_cutoff``."""
    out: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for r in rows:
        d = day(r.get("occurred_at"))
        if d and r.get("value_numeric") not in (None, ""):
            point: tuple[Any, ...] = (date.fromisoformat(d), float(r["value_numeric"]))
            marks = score_marks(r)
            if marks:
                point += ("crosses_cutoff" if BAND_UNCERTAIN in marks else "prorated",)
            out[r["measure_code"]].append(point)
    return out


@cache
def renderer_version() -> str:
    """:data:`RENDERER_VERSION` plus matplotlib's: an upgrade may move pixels."""
    try:
        mpl = metadata.version("matplotlib")
    except metadata.PackageNotFoundError:
        mpl = "none"
    return f"{RENDERER_VERSION}+matplotlib-{mpl}"


def input_sha256(
    client: dict[str, Any],
    rows: list[dict[str, Any]],
    charted: tuple[ChartInstrument, ...],
    version: str,
    notes: dict[str, ScaleNote] | None = None,
    alerts: list[dict[str, Any]] | None = None,
) -> str:
    """sha256 of everything one client's files are drawn from.

    The client's measurement rows (whole, in render order), its open alerts, the
    client columns the files show, the charted instruments with their bands (a band
    change in the catalog redraws), the band sources of the client's scales (``notes``:
    a band set turning local redraws) and the renderer version. Equal hash, equal bytes.
    """
    codes = sorted({str(r.get("measure_code")) for r in rows})
    doc = {
        "alerts": [shown(a) for a in alerts or []],
        "notes": {c: asdict(notes[c]) for c in codes if c in notes} if notes else {},
        "client": {k: client.get(k) for k in CLIENT_FIELDS},
        "instruments": [asdict(i) for i in charted],
        "measurements": rows,
        "renderer_version": version,
    }
    return hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()


def _previous(params: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``client_id -> (input_sha256, renderer_version)`` of the ``previous`` state rows."""
    out: dict[str, tuple[Any, Any]] = {}
    for n, row in enumerate(require_list(params, "previous", id_col="client_id")):
        if row.get("artifact", ARTIFACT) != ARTIFACT:
            continue
        if not row.get("client_id"):
            raise PermanentError(f"param 'previous' item {n} has no client_id")
        out[str(row["client_id"])] = (row.get("input_sha256"), row.get("renderer_version"))
    return out


def _render(
    client: dict[str, Any],
    rows: list[dict[str, Any]],
    charted: tuple[ChartInstrument, ...],
    notes: dict[str, ScaleNote],
    alerts: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    folder = f"clients/{client['_folder']}"
    alert_days = sorted({d for a in alerts if (d := day(a.get("occurred_at")))})
    png = render_chart(_series(rows), charted, [date.fromisoformat(d) for d in alert_days])
    return [
        text_item(f"{folder}/measures.md", _measures_md(client, rows, charted, notes, alerts)),
        {
            "path": f"{folder}/measures.png",
            "content": base64.b64encode(png).decode("ascii"),
            "encoding": "base64",
        },
    ]


@register("vault_measures")
def vault_measures(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """``measures.md`` and ``measures.png`` of every client with a score whose inputs changed.

    Params:
        clients: ``proj_clients`` rows.
        measurements: ``proj_measurements`` rows; those of no known client are
            skipped and counted.
        alerts: ``proj_alerts`` rows; each client's open ones head its measures.md
            and are marked on its chart (a client with open alerts and no score
            still gets both files).
        previous: the state rows of the last run (``client_id``, ``artifact``,
            ``input_sha256``, ``renderer_version``); absent or empty draws everyone.
        rerender: true draws everyone whatever the state (files deleted by hand).

    Returns:
        A paged result (``PAGE_CLIENTS`` clients a page): ``items``, the ``file.write``
        items of the clients drawn, and ``renders``, their new state rows, to be
        written only after the files. A client whose scores
        all left the view gets no item (its old files stay, as files are never
        deleted); ``vanished`` counts them.
    """
    clients = index_clients(
        require_list(params, "clients", id_col="client_id", times=("updated_at",))
    )
    rows = require_list(
        params, "measurements", id_col="idem_key", times=("occurred_at", "updated_at")
    )
    _check_rows(rows)
    previous = _previous(params)
    rerender = params.get("rerender")
    if rerender not in (None, True, False):
        raise PermanentError(f"param 'rerender' must be a boolean, got {type(rerender).__name__}")
    by_client: dict[str, list[dict[str, Any]]] = defaultdict(list)
    skipped = 0
    for r in rows:
        cid = str(r.get("client_id"))
        if cid in clients:
            by_client[cid].append(r)
        else:
            skipped += 1
    alerts = {c: a for c, a in open_by_client(alert_rows(params)).items() if c in clients}
    for cid in alerts:
        by_client.setdefault(cid, [])
    charted = chart_instruments(ctx.catalog_dir)
    notes = scale_notes(ctx.catalog_dir)
    version = renderer_version()

    def pages() -> Iterator[dict[str, Any]]:
        # PNGs are most of a run's bytes: drawn and handed on PAGE_CLIENTS clients at a
        # time, so their files and state are written before the next page is drawn.
        items: list[dict[str, Any]] = []
        renders: list[dict[str, Any]] = []
        seen = 0
        for n, cid in enumerate(sorted(by_client), start=1):
            seen += 1
            client, mine = clients[cid], sorted(by_client[cid], key=_sort_key)
            mine_alerts = alerts.get(cid, [])
            sha = input_sha256(client, mine, charted, version, notes, mine_alerts)
            if rerender or previous.get(cid) != (sha, version):
                items.extend(_render(client, mine, charted, notes, mine_alerts))
                renders.append(
                    {
                        "client_id": cid,
                        "artifact": ARTIFACT,
                        "input_sha256": sha,
                        "renderer_version": version,
                    }
                )
            if n % PAGE_CLIENTS == 0 or n == len(by_client):
                yield result(
                    items,
                    input=len(items),
                    renders=renders,
                    rendered=len(renders),
                    unchanged=seen - len(renders),
                )
                items, renders, seen = [], [], 0
        if not by_client:
            yield result([], input=0, renders=[], rendered=0, unchanged=0)

    return paged(
        pages(),
        stats={"input": len(clients) + len(rows), "skipped": skipped},
        clients_with_measures=len(by_client),
        vanished=len(previous.keys() - by_client.keys()),
    )
