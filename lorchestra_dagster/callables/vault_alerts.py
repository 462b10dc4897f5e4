"""``vault_alerts``: ``alerts.md`` at the vault root, and the open-alert section of client files.

Input is ``canonical.proj_alerts`` (every safety flag with its alert's state and
client) and ``proj_clients``. ``alerts.md`` lists open alerts first (most
severe, newest), then acknowledged ones with who, when and their note, then
only the count of resolved ones, so the file shows what needs doing instead
of growing forever. A flag whose respondent matches no client is listed too,
under a short hash of its subject. Cells hold ids, codes, dates, the rule's
message and the clinician's own notes: never an answer.

``open_section`` is the "Open safety alerts" block that ``contact.md`` and
``measures.md`` of each client start with (same rows, same order).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

from lorchestra_dagster.callables.base import CallContext, register, result
from lorchestra_dagster.callables.vault_common import (
    day,
    front_matter,
    index_clients,
    latest,
    md_table,
    require_list,
    short_id,
    text_item,
)
from lorchestra_dagster.errors import PermanentError

#: Timestamp columns of proj_alerts the renderers read.
ALERT_TIMES = ("occurred_at", "updated_at", "acknowledged_at", "resolved_at")
_RANK = {"critical": 0, "high": 1, "warning": 2}
ACK_HINT = '`lorchestra alerts ack ALERT_ID --note "..."`'
RESOLVE_HINT = '`lorchestra alerts resolve ALERT_ID --note "..."`'


def alert_rows(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``alerts`` param, checked (``alert_id``, ``code``, ``status``), in display order."""
    rows = require_list(params, "alerts", id_col="alert_id", times=ALERT_TIMES)
    for n, r in enumerate(rows):
        if not r.get("alert_id") or not r.get("code") or not r.get("status"):
            raise PermanentError(f"alerts item {n} needs alert_id, code and status")
    rows = sorted(rows, key=lambda r: str(r["alert_id"]))
    rows.sort(key=lambda r: str(r.get("occurred_at") or ""), reverse=True)
    rows.sort(key=lambda r: _RANK.get(str(r.get("severity")), 9))
    return rows


#: What the client files show of an alert: the redraw of ``render_measures`` keys on
#: these only, so the sync's bookkeeping (opened_at, notified_at) redraws nothing.
SHOWN = ("alert_id", "severity", "occurred_at", "code", "message", "source_changed",
         "reason", "item", "status")  # fmt: skip


def shown(row: dict[str, Any]) -> dict[str, Any]:
    """The columns of an alert that reach a client file."""
    return {k: row.get(k) for k in SHOWN}


def open_by_client(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Open alerts per ``client_id`` (display order kept)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("status") == "open" and r.get("client_id"):
            out[str(r["client_id"])].append(r)
    return out


def _detail(r: dict[str, Any]) -> str:
    parts = []
    if r.get("source_changed"):
        parts.append("source changed since raised: review")
    if r.get("code") == "submission_quarantined" and r.get("reason"):
        parts.append(f"not scored ({r['reason']})")
    elif r.get("reason") in ("skipped", "unreadable"):
        parts.append(f"item {r.get('item')} {r['reason']}")
    return "; ".join(parts)


def open_section(rows: list[dict[str, Any]], *, heading: str = "##") -> str:
    """The "Open safety alerts" block of a client file (rows: that client's open alerts)."""
    head = f"{heading} Open safety alerts\n\n"
    if not rows:
        return head + "_No open safety alerts._\n"
    table = md_table(
        ["Alert", "Severity", "Date", "Code", "What to do", "Details"],
        [
            [f"`{r['alert_id']}`", r.get("severity"), day(r.get("occurred_at")), r["code"],
             r.get("message"), _detail(r)]
            for r in rows
        ],
    )  # fmt: skip
    return f"{head}{table}\nAcknowledge with {ACK_HINT} (see [alerts](../../alerts.md)).\n"


def _who(r: dict[str, Any], clients: dict[str, dict[str, Any]]) -> str:
    client = clients.get(str(r.get("client_id")))
    if client is not None:
        return f"[{client['_folder']}](clients/{client['_folder']}/contact.md)"
    return f"unmatched respondent ({short_id(str(r.get('subject_id') or r['alert_id']))})"


@register("vault_alerts")
def vault_alerts(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """``alerts.md``: open alerts first, acknowledged with their note, resolved counted.

    Params: ``clients`` (``proj_clients`` rows), ``alerts`` (``proj_alerts`` rows).
    """
    clients = index_clients(
        require_list(params, "clients", id_col="client_id", times=("updated_at",))
    )
    rows = alert_rows(params)
    by_status: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_status[str(r["status"])].append(r)
    opened, acked = by_status["open"], by_status["acknowledged"]
    resolved = len(by_status["resolved"])
    state = "\n".join(
        f"{r['alert_id']}|{r['status']}|{bool(r.get('source_changed'))}" for r in rows
    )
    meta = {
        "source_entity": "alert",
        "record_id": "alerts",
        "idem_key": hashlib.sha256(state.encode()).hexdigest(),
        "projected_at": latest(r.get("updated_at") for r in rows),
        "open_alerts": len(opened),
        "acknowledged_alerts": len(acked),
        "resolved_alerts": resolved,
    }
    body = [
        front_matter(meta),
        "\n# Safety alerts\n\n",
        f"{len(opened)} open, {len(acked)} acknowledged, {resolved} resolved. Acknowledge "
        f"with {ACK_HINT}, resolve with {RESOLVE_HINT}; an alert never closes by itself "
        "(docs/clinical-safety.md).\n",
        f"\n## Open ({len(opened)})\n\n",
    ]
    if opened:
        body.append(
            md_table(
                ["Alert", "Severity", "Date", "Client", "Code", "Details"],
                [
                    [
                        f"`{r['alert_id']}`",
                        r.get("severity"),
                        day(r.get("occurred_at")),
                        _who(r, clients),
                        r["code"],
                        _detail(r),
                    ]
                    for r in opened
                ],
            )  # fmt: skip
        )
    else:
        body.append("No open safety alerts.\n")
    body.append(f"\n## Acknowledged ({len(acked)})\n\n")
    if acked:
        body.append(
            md_table(
                ["Alert", "Severity", "Date", "Client", "Code", "By", "On", "Note", "Details"],
                [
                    [
                        f"`{r['alert_id']}`",
                        r.get("severity"),
                        day(r.get("occurred_at")),
                        _who(r, clients),
                        r["code"],
                        r.get("acknowledged_by"),
                        day(r.get("acknowledged_at")),
                        r.get("acknowledge_note"),
                        _detail(r),
                    ]
                    for r in acked
                ],
            )  # fmt: skip
        )
    else:
        body.append("None.\n")
    body.append(
        f"\n## Resolved\n\n{resolved} resolved alert(s): `lorchestra alerts list --all` "
        "shows them with their notes.\n"
    )
    codes = {str(r["code"]): r for r in rows}
    if codes:
        body.append("\n## Codes\n\n")
        body.extend(
            f"- `{c}` ({codes[c].get('severity')}): {codes[c].get('message')}\n"
            for c in sorted(codes)
        )
    return result(
        [text_item("alerts.md", "".join(body))],
        input=len(rows),
        open_alerts=len(opened),
        acknowledged_alerts=len(acked),
    )
