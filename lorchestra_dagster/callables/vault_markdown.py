"""``vault_client_markdown``: contact, session and report markdown per client.

Input is the projection views' rows (``proj_clients``, ``proj_sessions``,
``proj_transcripts``, ``proj_clinical_documents``, ``proj_contact_events``), output
is ``file.write`` items under ``clients/<client folder>/``. The callable is pure:
it never touches the vault; the job's ``plan.build`` + ``storacle.submit`` write,
and only files whose bytes changed are rewritten.

Layout (see docs/vault.md)::

    clients/<folder>/contact.md
    clients/<folder>/sessions/session-<n>/transcript.md
    clients/<folder>/sessions/session-<n>/session-note.md
    clients/<folder>/sessions/session-<n>/session-summary.md
    clients/<folder>/reports/<date>-progress-report.md
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from slugify import slugify

from lorchestra_dagster.callables.base import CallContext, register, result
from lorchestra_dagster.callables.vault_alerts import alert_rows, open_by_client, open_section
from lorchestra_dagster.callables.vault_common import (
    ATTENDANCE,
    attendance,
    day,
    front_matter,
    index_clients,
    latest,
    md_table,
    require_list,
    text_item,
)
from lorchestra_dagster.timestamps import iso_utc

#: Columns of proj_clients that are bookkeeping, not facts to show on contact.md.
_HIDDEN_CLIENT_COLUMNS = {
    "idem_key",
    "updated_at",
    "projected_at",
    "source_system",
    "connection_name",
    "first_name",
    "last_name",
}
#: document_type -> file name inside the session folder.
SESSION_DOC_FILES = {"session_note": "session-note.md", "session_summary": "session-summary.md"}


def display_name(client: dict[str, Any]) -> str:
    """``First Last`` (or the folder name when the record has no name)."""
    name = " ".join(str(client.get(k) or "").strip() for k in ("first_name", "last_name"))
    return name.strip() or client["_folder"]


def _label(column: str) -> str:
    return column.replace("_", " ").capitalize()


def _session_numbers(sessions: list[dict[str, Any]]) -> dict[str, int]:
    """``session_id -> n`` per client: the view's ``session_num``, else order by start time."""
    numbers: dict[str, int] = {}
    by_client: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sessions:
        by_client[str(row.get("client_id"))].append(row)
    for rows in by_client.values():
        rows.sort(key=lambda r: (str(r.get("started_at") or ""), str(r.get("session_id"))))
        for n, row in enumerate(rows, start=1):
            num = row.get("session_num")
            numbers[str(row["session_id"])] = int(num) if num is not None else n
    return numbers


def _doc_file(
    source_entity: str, row: dict[str, Any], id_col: str, title: str, extra: dict[str, Any]
) -> str:
    """One markdown file for a text record (transcript, note, summary, report)."""
    meta = {
        "source_entity": source_entity,
        "record_id": row.get(id_col),
        "idem_key": row.get("idem_key"),
        "projected_at": latest([row.get("updated_at")]),
        **extra,
    }
    body = str(row.get("content") or "").strip()
    return (
        f"{front_matter(meta)}\n# {title}\n\n{body}\n"
        if body
        else (f"{front_matter(meta)}\n# {title}\n\n_No text on record._\n")
    )


def _contact_history(events: list[dict[str, Any]]) -> str:
    """Events per month and kind: a count table, no subjects or amounts."""
    if not events:
        return "_No contact events on record._\n"
    kinds = sorted({str(e.get("event_type")) for e in events})
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e in events:
        month = (day(e.get("occurred_at")) or "unknown")[:7]
        counts[month][str(e.get("event_type"))] += 1
    rows = [[m, *[counts[m].get(k, 0) for k in kinds]] for m in sorted(counts)]
    return md_table(["Month", *[_label(k) for k in kinds]], rows)


def _contact_md(
    client: dict[str, Any],
    sessions: list[dict[str, Any]],
    numbers: dict[str, int],
    files_by_session: dict[str, list[str]],
    reports: list[tuple[str, str]],
    events: list[dict[str, Any]],
    stamps: list[Any],
    alerts: list[dict[str, Any]],
) -> str:
    meta = {
        "source_entity": "contact",
        "record_id": client["client_id"],
        "idem_key": client.get("idem_key"),
        "projected_at": latest(stamps),
        "client_folder": client["_folder"],
    }
    facts = [
        [_label(k), v]
        for k, v in client.items()
        if not k.startswith("_") and k not in _HIDDEN_CLIENT_COLUMNS and v not in (None, "")
    ]
    parts = [
        front_matter(meta),
        f"\n# {display_name(client)}\n\n",
        open_section(alerts),
        "\n## Details\n\n",
        md_table(["Field", "Value"], facts),
    ]
    ordered = sorted(sessions, key=lambda r: numbers[str(r["session_id"])])
    booked = [s for s in ordered if attendance(s) == "scheduled"]
    held = [s for s in ordered if attendance(s) != "scheduled"]
    parts.append("\n## Upcoming sessions\n\n")
    if booked:
        parts.append(
            md_table(
                ["#", "Date", "Time (UTC)"],
                [
                    [numbers[str(s["session_id"])], day(s.get("started_at")),
                     (iso_utc(s.get("started_at")) or "")[11:16]]
                    for s in booked
                ],
            )
        )  # fmt: skip
    else:
        parts.append("_No upcoming session booked._\n")
    parts.append("\n## Sessions\n\n")
    if held:
        tally = Counter(attendance(s) for s in held if attendance(s))
        if tally:
            counts = [f"{label} {tally[label]}" for label in ATTENDANCE.values() if tally[label]]
            parts.append(f"Attendance: {', '.join(counts)} of {len(held)}.\n\n")
        rows = []
        for s in held:
            sid = str(s["session_id"])
            n = numbers[sid]
            links = ", ".join(
                f"[{name.removesuffix('.md')}](sessions/session-{n}/{name})"
                for name in files_by_session.get(sid, [])
            )
            rows.append([n, day(s.get("started_at")), attendance(s), links])
        parts.append(md_table(["#", "Date", "Attendance", "Files"], rows))
    else:
        parts.append("_No sessions on record._\n")
    parts.append("\n## Reports\n\n")
    parts.append(
        "".join(f"- [{label}]({path})\n" for label, path in reports)
        if reports
        else "_No reports on record._\n"
    )
    parts.append("\n## Measures\n\nSee [measures](measures.md).\n")
    parts.append(
        "\n## Questionnaires and billing\n\n"
        "See [questionnaires](forms.md) (intake and follow-up answers) and [billing](billing.md).\n"
    )
    parts.append("\n## Contact history\n\n")
    parts.append(_contact_history(events))
    return "".join(parts)


@register("vault_client_markdown")
def vault_client_markdown(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """Render contact, session and report markdown for every client.

    Params: ``clients``, ``sessions``, ``transcripts``, ``documents``,
    ``contact_events``, ``alerts`` (rows of the matching ``proj_*`` views; each
    client's open alerts head its contact.md). Rows whose client is
    not in ``clients`` are skipped and counted (never logged).
    """
    clients = index_clients(
        require_list(params, "clients", id_col="client_id", times=("updated_at",))
    )
    sessions = require_list(
        params, "sessions", id_col="session_id", times=("started_at", "updated_at")
    )
    transcripts = require_list(params, "transcripts", id_col="transcript_id", times=("updated_at",))
    documents = require_list(
        params, "documents", id_col="document_id", times=("document_date", "updated_at")
    )
    events = require_list(
        params, "contact_events", id_col="event_id", times=("occurred_at", "updated_at")
    )
    alerts = open_by_client(alert_rows(params))
    n_input = len(clients) + len(sessions) + len(transcripts) + len(documents) + len(events)
    skipped = 0

    known_sessions = []
    for s in sessions:
        if str(s.get("client_id")) in clients and s.get("session_id"):
            known_sessions.append(s)
        else:
            skipped += 1
    numbers = _session_numbers(known_sessions)
    session_by_id = {str(s["session_id"]): s for s in known_sessions}

    items: list[dict[str, Any]] = []
    files_by_session: dict[str, list[str]] = defaultdict(list)
    stamps_by_client: dict[str, list[Any]] = defaultdict(list)
    reports_by_client: dict[str, list[tuple[str, str]]] = defaultdict(list)
    used_paths: set[str] = set()

    def session_file(
        row: dict[str, Any], file_name: str, entity: str, id_col: str, title_kind: str
    ) -> None:
        nonlocal skipped
        session = session_by_id.get(str(row.get("session_id")))
        if session is None:
            skipped += 1
            return
        client = clients[str(session["client_id"])]
        n = numbers[str(session["session_id"])]
        path = f"clients/{client['_folder']}/sessions/session-{n}/{file_name}"
        if path in used_paths:  # a second record of one kind for one session
            skipped += 1
            return
        used_paths.add(path)
        when = day(session.get("started_at"))
        items.append(
            text_item(
                path,
                _doc_file(
                    entity,
                    row,
                    id_col,
                    f"Session {n} {title_kind}" + (f" ({when})" if when else ""),
                    {"session_id": session["session_id"], "session_num": n, "session_date": when},
                ),
            )
        )
        files_by_session[str(session["session_id"])].append(file_name)
        stamps_by_client[str(session["client_id"])].append(row.get("updated_at"))

    for row in sorted(transcripts, key=lambda r: str(r.get("idem_key"))):
        session_file(row, "transcript.md", "session_transcript", "transcript_id", "transcript")

    for row in sorted(
        documents, key=lambda r: (str(r.get("document_date")), str(r.get("idem_key")))
    ):
        kind = str(row.get("document_type") or "document")
        if kind in SESSION_DOC_FILES:
            session_file(
                row, SESSION_DOC_FILES[kind], kind, "document_id", kind.replace("session_", "")
            )
            continue
        client = clients.get(str(row.get("client_id")))
        if client is None:
            skipped += 1
            continue
        when = day(row.get("document_date")) or "undated"
        slug = slugify(kind) or "document"
        base = f"clients/{client['_folder']}/reports/{when}-{slug}"
        path, k = f"{base}.md", 2
        while path in used_paths:  # two reports on one day: -2, -3 in idem_key order
            path, k = f"{base}-{k}.md", k + 1
        used_paths.add(path)
        title = str(row.get("title") or kind.replace("_", " ").capitalize())
        items.append(
            text_item(
                path,
                _doc_file(
                    "clinical_document",
                    row,
                    "document_id",
                    f"{title} ({when})",
                    {"document_type": kind, "document_date": when},
                ),
            )
        )
        reports_by_client[client["client_id"]].append(
            (f"{when} {kind.replace('_', ' ')}", path.split("/", 2)[2])
        )
        stamps_by_client[client["client_id"]].append(row.get("updated_at"))

    events_by_client: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        cid = str(e.get("client_id"))
        if cid in clients:
            events_by_client[cid].append(e)
            stamps_by_client[cid].append(e.get("updated_at"))
        else:
            skipped += 1

    sessions_by_client: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in known_sessions:
        sessions_by_client[str(s["client_id"])].append(s)
        stamps_by_client[str(s["client_id"])].append(s.get("updated_at"))

    for cid in sorted(clients):
        client = clients[cid]
        content = _contact_md(
            client,
            sessions_by_client[cid],
            numbers,
            files_by_session,
            reports_by_client[cid],
            events_by_client[cid],
            [
                client.get("updated_at"),
                *stamps_by_client[cid],
                *(a.get("updated_at") for a in alerts.get(cid, [])),
            ],
            alerts.get(cid, []),
        )
        items.append(text_item(f"clients/{client['_folder']}/contact.md", content))

    items.sort(key=lambda i: i["path"])
    return result(items, input=n_input, skipped=skipped)


@register("vault_client_folders")
def vault_client_folders(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """proj_clients rows with their vault folder name added as ``client_folder``.

    The folder name is computed in Python (transliteration, slug, hash), not in SQL, so
    ``sync_clients`` passes the rows through here: local.db's ``clients`` table then tells
    the vault owner which folder holds each client's files.
    """
    clients = index_clients(require_list(params, "items"))
    items = [
        {**{k: v for k, v in row.items() if k != "_folder"}, "client_folder": row["_folder"]}
        for _, row in sorted(clients.items())
    ]
    return result(items, input=len(items))
