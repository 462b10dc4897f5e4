"""``vault_billing``: ``clients/<folder>/billing.md`` with invoices, payments, refunds, balance.

Input is rows of ``proj_clients``, ``proj_invoices`` and the money rows of
``proj_contact_events`` (``payment`` and ``refund``, amounts in cents). Output
is one ``file.write`` item per client (so ``contact.md`` can always link it). The balance due is
what Stripe still expects on open invoices (``amount_remaining`` of status
``open``), per currency, so a clinician sees at a glance who owes what.
The callable is pure; only files whose bytes changed are rewritten.
"""

from __future__ import annotations

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
    text_item,
)
from lorchestra_dagster.callables.vault_markdown import display_name

#: Invoice statuses that still expect money.
OPEN_STATUSES = frozenset({"open"})


def money(cents: Any, currency: Any) -> str:
    """``150.00 USD`` from minor units (``None`` shows as an empty cell)."""
    if cents is None or cents == "":
        return ""
    return f"{int(cents) / 100:,.2f} {str(currency or '').upper()}".strip()


def balances(invoices: list[dict[str, Any]]) -> dict[str, int]:
    """Cents still due per currency over the open invoices."""
    due: dict[str, int] = defaultdict(int)
    for inv in invoices:
        if str(inv.get("status")) in OPEN_STATUSES:
            due[str(inv.get("currency") or "").upper()] += int(
                inv.get("amount_remaining_cents") or 0
            )
    return {cur: cents for cur, cents in sorted(due.items()) if cents}


def _balance_line(invoices: list[dict[str, Any]]) -> str:
    due = balances(invoices)
    open_n = sum(1 for i in invoices if str(i.get("status")) in OPEN_STATUSES)
    if not due:
        return "Balance due: none.\n"
    amounts = ", ".join(money(cents, cur) for cur, cents in due.items())
    return f"Balance due: **{amounts}** ({open_n} open invoice(s)).\n"


def _billing_md(
    client: dict[str, Any], invoices: list[dict[str, Any]], events: list[dict[str, Any]]
) -> str:
    stamps = [client.get("updated_at"), *(r.get("updated_at") for r in [*invoices, *events])]
    meta = {
        "source_entity": "billing",
        "record_id": client["client_id"],
        "projected_at": latest(stamps),
        "client_folder": client["_folder"],
        "open_invoices": sum(1 for i in invoices if str(i.get("status")) in OPEN_STATUSES),
    }
    parts = [
        front_matter(meta),
        f"\n# Billing: {display_name(client)}\n\n",
        _balance_line(invoices),
    ]
    parts.append("\n## Invoices\n\n")
    if invoices:
        rows = [
            [
                i.get("number") or "",
                day(i.get("created_at")),
                day(i.get("due_at")),
                i.get("status"),
                i.get("description") or "",
                money(i.get("amount_due_cents"), i.get("currency")),
                money(i.get("amount_paid_cents"), i.get("currency")),
                money(i.get("amount_remaining_cents"), i.get("currency")),
            ]
            for i in sorted(
                invoices, key=lambda r: (str(r.get("created_at")), str(r.get("invoice_id")))
            )
        ]
        parts.append(
            md_table(
                ["Number", "Date", "Due", "Status", "For", "Amount", "Paid", "Remaining"], rows
            )
        )
    else:
        parts.append("_No invoices on record._\n")
    for kind, title in (("payment", "Payments"), ("refund", "Refunds")):
        rows = [
            [day(e.get("occurred_at")), money(e.get("amount_cents"), e.get("currency"))]
            for e in sorted(events, key=lambda r: (str(r.get("occurred_at")), str(r["event_id"])))
            if e.get("event_type") == kind
        ]
        parts.append(f"\n## {title}\n\n")
        parts.append(
            md_table(["Date", "Amount"], rows) if rows else f"_No {title.lower()} on record._\n"
        )
    return "".join(parts)


@register("vault_billing")
def vault_billing(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """Render billing.md for every client (one with no money on record gets a short page).

    Params: ``clients``, ``invoices``, ``contact_events`` (rows of the matching
    ``proj_*`` views; events other than payments and refunds are ignored). Rows
    of no known client are skipped and counted, never logged.
    """
    clients = index_clients(
        require_list(params, "clients", id_col="client_id", times=("updated_at",))
    )
    invoices = require_list(
        params, "invoices", id_col="invoice_id", times=("created_at", "due_at", "updated_at")
    )
    events = require_list(
        params, "contact_events", id_col="event_id", times=("occurred_at", "updated_at")
    )
    skipped = 0
    invoices_by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for inv in invoices:
        cid = str(inv.get("client_id"))
        if cid in clients:
            invoices_by[cid].append(inv)
        else:
            skipped += 1
    events_by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e.get("event_type") not in ("payment", "refund"):
            continue
        cid = str(e.get("client_id"))
        if cid in clients:
            events_by[cid].append(e)
        else:
            skipped += 1
    items = [
        text_item(
            f"clients/{clients[cid]['_folder']}/billing.md",
            _billing_md(clients[cid], invoices_by[cid], events_by[cid]),
        )
        for cid in sorted(clients)
    ]
    return result(items, input=len(clients) + len(invoices) + len(events), skipped=skipped)
