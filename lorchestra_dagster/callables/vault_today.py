"""``vault_today``: ``today.md`` at the vault root, the page a clinician opens each morning.

Sections, for the UTC date of the run (``CallContext.now``; ``as_of`` in the
params overrides it, for tests and for looking at another day):

- sessions today and in the next seven days (date, time, client, session #, attendance:
  ``scheduled`` for a booked one, what happened for one already held);
- open safety flags (count per code, newest first, linked to the client's
  measures; ``alerts.md`` has every one);
- forms submitted and scores recorded since yesterday;
- unpaid invoices (open, with what remains and whether the due date passed).

Registered ``clock=True``: the page changes with the date even when no row
did, so its job always runs (it is one small file). No answer text, note or
email is on the page: dates, folders, codes, scores and amounts.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lorchestra_dagster.callables.base import CallContext, register, result
from lorchestra_dagster.callables.vault_billing import OPEN_STATUSES, money
from lorchestra_dagster.callables.vault_common import (
    attendance,
    day,
    front_matter,
    index_clients,
    md_table,
    require_list,
    text_item,
)
from lorchestra_dagster.callables.vault_measures import flag_codes, fmt_score
from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.timestamps import iso_utc

WEEK = 7


def _as_of(params: dict[str, Any], ctx: CallContext) -> date:
    raw = params.get("as_of")
    if raw:
        try:
            return date.fromisoformat(str(raw)[:10])
        except ValueError:
            raise PermanentError("as_of must be an ISO date (YYYY-MM-DD)") from None
    return (ctx.now or datetime.now(UTC)).astimezone(UTC).date()


def _link(clients: dict[str, dict[str, Any]], cid: Any, page: str) -> str:
    client = clients.get(str(cid))
    if client is None:
        return "unmatched"
    return f"[{client['_folder']}](clients/{client['_folder']}/{page})"


def _sessions(
    sessions: list[dict[str, Any]], clients: dict[str, dict[str, Any]], today: date
) -> str:
    end = today + timedelta(days=WEEK)
    rows = []
    for s in sessions:
        when = iso_utc(s.get("started_at"))
        if not when or str(s.get("client_id")) not in clients:
            continue
        d = date.fromisoformat(when[:10])
        if today <= d < end:
            rows.append(
                [
                    "today" if d == today else d.isoformat(),
                    when[11:16],
                    _link(clients, s.get("client_id"), "contact.md"),
                    s.get("session_num") or "",
                    attendance(s),
                ]
            )
    rows.sort(key=lambda r: (str(r[0]) != "today", str(r[0]), str(r[1]), str(r[2])))
    if not rows:
        return "_No sessions today or in the next seven days._\n"
    return md_table(["Day", "Time (UTC)", "Client", "Session", "Attendance"], rows)


def _alerts(measurements: list[dict[str, Any]], clients: dict[str, dict[str, Any]]) -> str:
    flagged = [m for m in measurements if flag_codes(m.get("flags"))]
    if not flagged:
        return "_No open safety flags._\n"
    per_code = Counter(code for m in flagged for code in flag_codes(m.get("flags")))
    lines = [
        f"**{sum(per_code.values())} open safety flag(s)**: "
        + ", ".join(f"{code} {n}" for code, n in sorted(per_code.items()))
        + ". Every one is in [alerts](alerts.md).\n\n"
    ]
    newest = sorted(flagged, key=lambda m: (str(m.get("occurred_at")), str(m["idem_key"])))[::-1]
    rows = [
        [
            day(m.get("occurred_at")),
            _link(clients, m.get("client_id"), "measures.md"),
            ", ".join(flag_codes(m.get("flags"))),
            m.get("instrument_code") or "",
            fmt_score(m.get("value_numeric")),
        ]
        for m in newest[:10]
    ]
    lines.append(md_table(["Date", "Client", "Flag", "Instrument", "Score"], rows))
    return "".join(lines)


def _since_yesterday(
    forms: list[dict[str, Any]],
    measurements: list[dict[str, Any]],
    clients: dict[str, dict[str, Any]],
    today: date,
) -> str:
    since = (today - timedelta(days=1)).isoformat()
    new_forms = [f for f in forms if (day(f.get("submitted_at")) or "") >= since]
    new_scores = [
        m
        for m in measurements
        if (day(m.get("occurred_at")) or "") >= since
        and str(m.get("measure_code", "")).endswith("_total")
    ]
    if not new_forms and not new_scores:
        return f"_No forms or scores since {since}._\n"
    rows = [
        [
            day(f.get("submitted_at")),
            _link(clients, f.get("client_id"), "forms.md"),
            f.get("form_id"),
        ]
        for f in sorted(new_forms, key=lambda r: (str(r.get("submitted_at")), str(r["idem_key"])))
    ]
    parts = [md_table(["Date", "Client", "Form"], rows) if rows else "_No new forms._\n"]
    score_rows = [
        [
            day(m.get("occurred_at")),
            _link(clients, m.get("client_id"), "measures.md"),
            m.get("instrument_code") or "",
            fmt_score(m.get("value_numeric")),
            m.get("severity_label") or m.get("severity_code") or "",
        ]
        for m in sorted(new_scores, key=lambda r: (str(r.get("occurred_at")), str(r["idem_key"])))
    ]
    parts.append("\n")
    parts.append(
        md_table(["Date", "Client", "Instrument", "Total", "Severity"], score_rows)
        if score_rows
        else "_No new scores._\n"
    )
    return "".join(parts)


def _unpaid(invoices: list[dict[str, Any]], clients: dict[str, dict[str, Any]], today: date) -> str:
    open_ = [i for i in invoices if str(i.get("status")) in OPEN_STATUSES]
    if not open_:
        return "_No unpaid invoices._\n"
    rows = []
    for inv in sorted(open_, key=lambda r: (str(r.get("due_at")), str(r["invoice_id"]))):
        due = day(inv.get("due_at"))
        rows.append(
            [
                _link(clients, inv.get("client_id"), "billing.md"),
                inv.get("number") or "",
                due or "",
                "overdue" if due and due < today.isoformat() else "",
                money(inv.get("amount_remaining_cents"), inv.get("currency")),
            ]
        )
    return md_table(["Client", "Invoice", "Due", "", "Remaining"], rows)


@register("vault_today", clock=True)
def vault_today(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """Render today.md. Params: ``clients``, ``sessions``, ``measurements``,
    ``form_responses``, ``invoices`` (rows of the ``proj_*`` views), optional
    ``as_of`` (``YYYY-MM-DD``)."""
    today = _as_of(params, ctx)
    clients = index_clients(require_list(params, "clients", id_col="client_id"))
    sessions = require_list(params, "sessions", id_col="session_id", times=("started_at",))
    measurements = require_list(params, "measurements", id_col="idem_key", times=("occurred_at",))
    forms = require_list(params, "form_responses", id_col="idem_key", times=("submitted_at",))
    invoices = require_list(params, "invoices", id_col="invoice_id", times=("due_at",))
    meta = {
        "source_entity": "today",
        "record_id": "today",
        "as_of": today.isoformat(),
        "open_flags": sum(1 for m in measurements if flag_codes(m.get("flags"))),
        "unpaid_invoices": sum(1 for i in invoices if str(i.get("status")) in OPEN_STATUSES),
    }
    parts = [
        front_matter(meta),
        f"\n# Today, {today.isoformat()}\n",
        "\n## Safety flags\n\n",
        _alerts(measurements, clients),
        "\n## Sessions today and this week\n\n",
        _sessions(sessions, clients, today),
        "\n## New since yesterday\n\n",
        _since_yesterday(forms, measurements, clients, today),
        "\n## Unpaid invoices\n\n",
        _unpaid(invoices, clients, today),
    ]
    n_input = len(clients) + len(sessions) + len(measurements) + len(forms) + len(invoices)
    return result([text_item("today.md", "".join(parts))], input=n_input)
