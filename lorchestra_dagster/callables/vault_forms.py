"""``vault_forms``: ``clients/<folder>/forms.md``, every questionnaire a client answered.

Input is rows of ``proj_clients`` and ``proj_form_responses`` (answers as
``[{question_id, answer_value}]``). Question ids are turned back into the
wording the client saw through the catalog's form bindings and instruments
(``jobs/bindings``, ``jobs/instruments``), so the clinician reads "Little
interest or pleasure in doing things: Several days", not a hash. A question
no binding knows is shown by its id. Output is one ``file.write`` item per
client (a client with no submission gets a short page, so ``contact.md`` can
always link it). Pure: the catalog is read, the vault is not.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from lorchestra_dagster.callables.base import CallContext, register, result
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


def question_texts(catalog_dir: Path) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """``(form title by form_id, (instrument code, item text) by question_id)``."""
    from lorchestra_dagster.instruments.registry import load_bindings, load_instruments

    instruments = load_instruments(catalog_dir)
    titles: dict[str, str] = {}
    texts: dict[str, tuple[str, str]] = {}
    for binding in load_bindings(catalog_dir).values():
        titles[binding.form_id] = binding.title
        for q in binding.questions:
            inst = instruments.get(q.instrument)
            # Questions bound by position or wording have no id to label answers with.
            if q.question_id is not None and inst is not None and 1 <= q.item <= len(inst.items):
                texts[q.question_id] = (q.instrument, inst.item(q.item).text)
    return titles, texts


def _submission(
    row: dict[str, Any], titles: dict[str, str], texts: dict[str, tuple[str, str]]
) -> str:
    form = str(row.get("form_id") or "form")
    when = day(row.get("submitted_at")) or "undated"
    answers = as_json(row.get("answers")) or []
    # Bound questions in instrument order (the order the form asked), unknown ones after.
    order = {qid: i for i, qid in enumerate(texts)}
    found = []
    for answer in answers if isinstance(answers, list) else []:
        if not isinstance(answer, dict):
            continue
        qid = str(answer.get("question_id"))
        code, text = texts.get(qid, ("", f"question {qid}"))
        value = answer.get("answer_value")
        found.append((order.get(qid, len(order)), qid, code, text, "" if value is None else value))
    found.sort(key=lambda t: (t[0], t[1]))
    rows = [[n, code, text, value] for n, (_, _, code, text, value) in enumerate(found, start=1)]
    head = f"\n## {titles.get(form, form)} ({when})\n\n"
    body = md_table(["#", "Instrument", "Question", "Answer"], rows) if rows else "_No answers._\n"
    return head + body


def _forms_md(
    client: dict[str, Any],
    responses: list[dict[str, Any]],
    titles: dict[str, str],
    texts: dict[str, tuple[str, str]],
) -> str:
    meta = {
        "source_entity": "form_response",
        "record_id": client["client_id"],
        "projected_at": latest(
            [client.get("updated_at"), *(r.get("updated_at") for r in responses)]
        ),
        "client_folder": client["_folder"],
        "submissions": len(responses),
    }
    parts = [front_matter(meta), f"\n# Questionnaires: {display_name(client)}\n"]
    if not responses:
        parts.append("\n_No questionnaires on record._\n")
    for row in sorted(
        responses,
        key=lambda r: (str(r.get("submitted_at")), str(r.get("idem_key"))),
        reverse=True,
    ):
        parts.append(_submission(row, titles, texts))
    return "".join(parts)


@register("vault_forms")
def vault_forms(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """Render forms.md for every client: their submissions, newest first, with question texts.

    Params: ``clients``, ``form_responses`` (rows of the matching ``proj_*``
    views). Submissions of no known client are skipped and counted.
    """
    clients = index_clients(
        require_list(params, "clients", id_col="client_id", times=("updated_at",))
    )
    responses = require_list(
        params, "form_responses", id_col="idem_key", times=("submitted_at", "updated_at")
    )
    titles, texts = question_texts(ctx.catalog_dir)
    by_client: dict[str, list[dict[str, Any]]] = defaultdict(list)
    skipped = 0
    for row in responses:
        cid = str(row.get("client_id"))
        if cid in clients:
            by_client[cid].append(row)
        else:
            skipped += 1
    items = [
        text_item(
            f"clients/{clients[cid]['_folder']}/forms.md",
            _forms_md(clients[cid], by_client[cid], titles, texts),
        )
        for cid in sorted(clients)
    ]
    return result(items, input=len(clients) + len(responses), skipped=skipped)
