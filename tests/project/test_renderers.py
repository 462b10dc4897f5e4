"""Vault renderers: front matter, stable projected_at, layout, alerts, deterministic chart."""

from __future__ import annotations

import base64
import io
from datetime import date
from pathlib import Path

import pytest
import yaml
from kit import REPO
from PIL import Image

from lorchestra_dagster.callables import CallContext, collect, get_callable
from lorchestra_dagster.callables.charts import (
    CHART_INSTRUMENTS,
    SIZE_PX,
    THRESHOLD_COLOR,
    chart_instruments,
    render_chart,
)
from lorchestra_dagster.callables.vault_common import client_folder
from lorchestra_dagster.errors import PermanentError

pytestmark = pytest.mark.unit


def ctx() -> CallContext:
    return CallContext(catalog_dir=REPO / "jobs", home=Path("/nonexistent"))


CLIENTS = [
    {
        "client_id": "c-1",
        "idem_key": "dataverse:practice:contact:c-1",
        "first_name": "Zoë",
        "last_name": "O'Brien",
        "email": "zoe@example.com",
        "updated_at": "2026-01-01T09:00:00Z",
    },
    {
        "client_id": "c-2",
        "idem_key": "dataverse:practice:contact:c-2",
        "first_name": None,
        "last_name": None,
        "email": None,
        "updated_at": "2026-01-02T09:00:00+00:00",
    },
]
SESSIONS = [
    {
        "session_id": "s-2",
        "idem_key": "k2#clinical_session",
        "client_id": "c-1",
        "session_num": 2,
        "started_at": "2026-02-05T10:00:00+00:00",
        "status": "completed",
        "updated_at": "2026-02-06T00:00:00+00:00",
    },
    {
        "session_id": "s-1",
        "idem_key": "k1#clinical_session",
        "client_id": "c-1",
        "session_num": 1,
        "started_at": "2026-01-05T10:00:00+00:00",
        "status": "completed",
        "updated_at": "2026-01-06T00:00:00+00:00",
    },
    {
        "session_id": "s-x",
        "idem_key": "kx#clinical_session",
        "client_id": "unknown",
        "session_num": 1,
        "started_at": "2026-01-05T10:00:00+00:00",
        "updated_at": "2026-01-06T00:00:00+00:00",
    },
]
TRANSCRIPTS = [
    {
        "transcript_id": "k1#session_transcript",
        "idem_key": "k1#session_transcript",
        "session_id": "s-1",
        "client_id": "c-1",
        "content": "Therapist: hello.",
        "updated_at": "2026-01-06T00:00:00+00:00",
    },
]
DOCUMENTS = [
    {
        "document_id": "k1#session_note",
        "idem_key": "k1#session_note",
        "session_id": "s-1",
        "client_id": "c-1",
        "document_type": "session_note",
        "document_date": "2026-01-05",
        "title": None,
        "content": "Note text",
        "updated_at": "2026-01-07T00:00:00+00:00",
    },
    {
        "document_id": "k1#session_summary",
        "idem_key": "k1#session_summary",
        "session_id": "s-1",
        "client_id": "c-1",
        "document_type": "session_summary",
        "document_date": "2026-01-05",
        "title": None,
        "content": "Summary text",
        "updated_at": "2026-01-06T00:00:00+00:00",
    },
    {
        "document_id": "r-1",
        "idem_key": "r-1#clinical_document",
        "session_id": None,
        "client_id": "c-1",
        "document_type": "progress_report",
        "document_date": "2026-03-01",
        "title": "Progress report",
        "content": "Going well",
        "updated_at": "2026-03-02T00:00:00Z",
    },
    {
        "document_id": "r-2",
        "idem_key": "r-2#clinical_document",
        "session_id": None,
        "client_id": "c-1",
        "document_type": "progress_report",
        "document_date": "2026-03-01",
        "title": "Progress report",
        "content": "Second",
        "updated_at": "2026-03-02T00:00:00Z",
    },
]
EVENTS = [
    {
        "event_id": "e1",
        "client_id": "c-1",
        "event_type": "email",
        "occurred_at": "2026-01-03T00:00:00+00:00",
        "updated_at": "2026-01-03T01:00:00+00:00",
    },
    {
        "event_id": "e2",
        "client_id": "c-1",
        "event_type": "session",
        "occurred_at": "2026-01-05T10:00:00+00:00",
        "updated_at": "2026-01-06T00:00:00+00:00",
    },
]


def obs(
    event: str,
    code: str,
    value: float,
    when: str,
    *,
    client: str = "c-1",
    flags: object = "[]",
    severity: str | None = None,
) -> dict:
    return {
        "idem_key": f"{event}:{code}",
        "measurement_event_idem_key": event,
        "client_id": client,
        "measure_code": code,
        "instrument_code": code.removesuffix("_total"),
        "value_numeric": value,
        "severity_code": severity,
        "severity_label": severity,
        "flags": flags,
        "occurred_at": when,
        "updated_at": when,
    }


MEASUREMENTS = [
    obs(
        "ev1",
        "phq9_total",
        14,
        "2026-01-05T10:00:00+00:00",
        severity="moderate",
        flags='[{"code": "phq9_item9", "message": "item 9 above 0"}]',
    ),
    obs("ev1", "gad7_total", 9, "2026-01-05T10:00:00+00:00", severity="mild"),
    obs("ev2", "phq9_total", 6.0, "2026-02-05T10:00:00+00:00", severity="mild"),
    obs("ev2", "pss_10_total", 20, "2026-02-05T10:00:00+00:00", severity="moderate"),
    obs(
        "ev3",
        "phq9_total",
        3,
        "2026-02-07T10:00:00+00:00",
        client="nobody",
        flags=[{"code": "phq9_item9"}],
        severity="minimal",
    ),
]


def split(content: str) -> tuple[dict, str]:
    assert content.startswith("---\n")
    head, body = content[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def client_markdown() -> dict:
    return get_callable("vault_client_markdown")(
        {
            "clients": CLIENTS,
            "sessions": SESSIONS,
            "transcripts": TRANSCRIPTS,
            "documents": DOCUMENTS,
            "contact_events": EVENTS,
        },
        ctx(),
    )


def test_client_folder_is_stable_safe_and_unique() -> None:
    folder = client_folder(CLIENTS[0])
    assert folder.startswith("o-brien-zoe-") and len(folder.rsplit("-", 1)[1]) == 8
    assert folder == client_folder(dict(CLIENTS[0]))
    assert client_folder(CLIENTS[1]).startswith("client-")
    twin = {**CLIENTS[0], "client_id": "c-9"}
    assert client_folder(twin) != folder
    assert client_folder(
        {"client_id": "x", "last_name": "../../etc", "first_name": "/"}
    ).startswith("etc-")


def test_client_markdown_layout_and_front_matter() -> None:
    out = client_markdown()
    folder = client_folder(CLIENTS[0])
    paths = [i["path"] for i in out["items"]]
    assert paths == sorted(paths)
    assert set(paths) == {
        f"clients/{folder}/contact.md",
        f"clients/{folder}/sessions/session-1/transcript.md",
        f"clients/{folder}/sessions/session-1/session-note.md",
        f"clients/{folder}/sessions/session-1/session-summary.md",
        f"clients/{folder}/reports/2026-03-01-progress-report.md",
        f"clients/{folder}/reports/2026-03-01-progress-report-2.md",
        f"clients/{client_folder(CLIENTS[1])}/contact.md",
    }
    assert out["stats"] == {"input": 12, "output": 7, "skipped": 1, "errors": 0}
    for item in out["items"]:
        meta, _ = split(item["content"])
        assert {"source_entity", "record_id", "idem_key", "projected_at"} <= set(meta)
        assert item["encoding"] == "utf-8"
    by_path = {i["path"]: i["content"] for i in out["items"]}
    meta, body = split(by_path[f"clients/{folder}/contact.md"])
    assert meta["source_entity"] == "contact" and meta["record_id"] == "c-1"
    # projected_at: the newest updated_at among the inputs of this file, not the clock
    assert meta["projected_at"] == "2026-03-02T00:00:00+00:00"
    assert "# Zoë O'Brien" in body and "zoe@example.com" in body
    assert "[transcript](sessions/session-1/transcript.md)" in body
    assert "(reports/2026-03-01-progress-report-2.md)" in body
    assert "| 2026-01 | 1 | 1 |" in body  # contact history: counts only
    meta, body = split(by_path[f"clients/{folder}/sessions/session-1/session-note.md"])
    assert meta["idem_key"] == "k1#session_note" and meta["session_num"] == 1
    assert meta["projected_at"] == "2026-01-07T00:00:00+00:00"
    assert "Note text" in body


def test_projected_at_is_stable_across_runs() -> None:
    assert client_markdown() == client_markdown()
    measures = get_callable("vault_measures")
    first = collect(measures({"clients": CLIENTS, "measurements": MEASUREMENTS}, ctx()))
    again = collect(
        measures({"clients": CLIENTS, "measurements": list(reversed(MEASUREMENTS))}, ctx())
    )
    assert first["items"] == again["items"]


def test_measures_table_and_chart_item() -> None:
    out = collect(
        get_callable("vault_measures")({"clients": CLIENTS, "measurements": MEASUREMENTS}, ctx())
    )
    folder = client_folder(CLIENTS[0])
    assert [i["path"] for i in out["items"]] == [
        f"clients/{folder}/measures.md",
        f"clients/{folder}/measures.png",
    ]
    assert out["stats"]["skipped"] == 1  # the unmatched respondent
    meta, body = split(out["items"][0]["content"])
    assert meta["observations"] == 4 and meta["projected_at"] == "2026-02-05T10:00:00+00:00"
    assert "![" in body and "(measures.png)" in body
    assert "| 2026-01-05 | 14 (moderate) | 9 (mild) |  |" in body
    assert "| 2026-02-05 | 6 (mild) |  | 20 (moderate) |" in body
    assert "| 2026-01-05 | phq9 | phq9_total | 14 | moderate | phq9_item9 |" in body
    png = base64.b64decode(out["items"][1]["content"])
    assert out["items"][1]["encoding"] == "base64"
    assert Image.open(io.BytesIO(png)).size == SIZE_PX


ALERTS = [
    {
        "alert_id": "a1a1a1a1a1a1",
        "code": "phq9_item9",
        "severity": "critical",
        "message": "PHQ-9 item 9 answered above 'Not at all'; assess risk.",
        "client_id": "c-1",
        "subject_id": "s" * 64,
        "occurred_at": "2026-01-05T10:00:00+00:00",
        "status": "open",
        "source_changed": False,
        "updated_at": "2026-01-06T00:00:00+00:00",
    },
    {
        "alert_id": "b2b2b2b2b2b2",
        "code": "submission_quarantined",
        "severity": "warning",
        "message": "Submission not scored.",
        "reason": "phq9 item 10: E_ANSWER_TEXT",
        "client_id": None,
        "subject_id": "u" * 64,
        "occurred_at": "2026-02-07T10:00:00+00:00",
        "status": "open",
        "source_changed": False,
        "updated_at": "2026-02-07T10:00:00+00:00",
    },
    {
        "alert_id": "c3c3c3c3c3c3",
        "code": "phq9_item9",
        "severity": "critical",
        "message": "PHQ-9 item 9 answered above 'Not at all'; assess risk.",
        "client_id": "c-1",
        "occurred_at": "2025-12-01T10:00:00+00:00",
        "status": "acknowledged",
        "source_changed": True,
        "acknowledged_by": "dr.k",
        "acknowledged_at": "2025-12-02T10:00:00+00:00",
        "acknowledge_note": "called; safety plan in place",
        "updated_at": "2025-12-02T10:00:00+00:00",
    },
    {
        "alert_id": "d4d4d4d4d4d4",
        "code": "phq9_item9",
        "severity": "critical",
        "client_id": "c-2",
        "occurred_at": "2025-11-01T10:00:00+00:00",
        "status": "resolved",
        "updated_at": "2025-11-02T10:00:00+00:00",
    },
]


def test_alerts_md_open_first_acknowledged_with_note_resolved_counted() -> None:
    out = get_callable("vault_alerts")({"clients": CLIENTS, "alerts": ALERTS}, ctx())
    [item] = out["items"]
    assert item["path"] == "alerts.md" and out["open_alerts"] == 2
    meta, body = split(item["content"])
    assert (meta["open_alerts"], meta["acknowledged_alerts"], meta["resolved_alerts"]) == (2, 1, 1)
    assert meta["projected_at"] == "2026-02-07T10:00:00+00:00"
    folder = client_folder(CLIENTS[0])
    assert body.index("## Open (2)") < body.index("## Acknowledged (1)") < body.index("## Resolved")
    rows = [line for line in body.splitlines() if line.startswith("| `")]
    assert rows[0].startswith(
        f"| `a1a1a1a1a1a1` | critical | 2026-01-05 | [{folder}](clients/{folder}/contact.md) "
        "| phq9_item9 |"
    )  # most severe first, then newest
    assert rows[1].startswith("| `b2b2b2b2b2b2` | warning | 2026-02-07 | unmatched respondent (")
    assert "not scored (phq9 item 10: E_ANSWER_TEXT)" in rows[1]
    assert "dr.k" in rows[2] and "called; safety plan in place" in rows[2]
    assert "source changed since raised: review" in rows[2]
    assert "d4d4d4d4d4d4" not in body and "1 resolved alert(s)" in body
    assert "lorchestra alerts ack ALERT_ID" in body


def test_alerts_without_alerts_is_stable() -> None:
    out = get_callable("vault_alerts")({"clients": CLIENTS, "alerts": []}, ctx())
    meta, body = split(out["items"][0]["content"])
    assert meta["open_alerts"] == 0 and meta["projected_at"] == "1970-01-01T00:00:00+00:00"
    assert "No open safety alerts." in body


def test_client_files_start_with_their_open_alerts() -> None:
    contact = get_callable("vault_client_markdown")({"clients": CLIENTS, "alerts": ALERTS}, ctx())
    folder = client_folder(CLIENTS[0])
    [c1] = [i for i in contact["items"] if i["path"] == f"clients/{folder}/contact.md"]
    _meta, body = split(c1["content"])
    assert "## Open safety alerts" in body and "`a1a1a1a1a1a1`" in body
    assert "c3c3c3c3c3c3" not in body  # acknowledged: in alerts.md, not an open alert
    measures = collect(
        get_callable("vault_measures")(
            {"clients": CLIENTS, "measurements": MEASUREMENTS, "alerts": ALERTS}, ctx()
        )
    )
    [m1] = [i for i in measures["items"] if i["path"] == f"clients/{folder}/measures.md"]
    assert "`a1a1a1a1a1a1`" in m1["content"]
    quiet = collect(
        get_callable("vault_measures")(
            {"clients": CLIENTS, "measurements": MEASUREMENTS, "alerts": []}, ctx()
        )
    )
    png = {i["path"]: i["content"] for i in measures["items"] if i["path"].endswith(".png")}
    png_quiet = {i["path"]: i["content"] for i in quiet["items"] if i["path"].endswith(".png")}
    assert png[f"clients/{folder}/measures.png"] != png_quiet[f"clients/{folder}/measures.png"]


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(PermanentError, match="clients item 1 repeats a client_id"):
        get_callable("vault_measures")({"clients": [CLIENTS[0], CLIENTS[0]]}, ctx())
    with pytest.raises(PermanentError, match="alerts item 0 needs alert_id, code and status"):
        get_callable("vault_alerts")({"clients": [], "alerts": [{"x": 1}]}, ctx())
    with pytest.raises(PermanentError, match="param 'sessions' must be a list"):
        get_callable("vault_client_markdown")({"clients": [], "sessions": "x"}, ctx())
    bad = [{**SESSIONS[0], "started_at": "Jan 5th, Ada's first visit"}]
    with pytest.raises(PermanentError) as err:
        get_callable("vault_client_markdown")({"clients": CLIENTS, "sessions": bad}, ctx())
    assert str(err.value) == (
        "param 'sessions' row session_id='s-2': column 'started_at' is not an ISO-8601 timestamp"
    )


SERIES = {
    "phq9_total": [(date(2026, 1, 5), 14.0), (date(2026, 2, 5), 6.0)],
    "gad7_total": [(date(2026, 1, 5), 9.0)],
}


def test_chart_bytes_are_deterministic_and_metadata_free() -> None:
    png = render_chart(SERIES)
    assert png == render_chart(dict(reversed(list(SERIES.items()))))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"tIME"):
        assert chunk not in png
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.size == SIZE_PX
    assert render_chart({}) != png


def test_chart_draws_band_thresholds() -> None:
    """Rows of strongly red pixels (the threshold colour, anti-aliased) are the band lines."""
    image = Image.open(io.BytesIO(render_chart(SERIES))).convert("RGB")
    red = int(THRESHOLD_COLOR[1:3], 16) - int(THRESHOLD_COLOR[3:5], 16)
    width, height = image.size
    px = image.load()

    def reddish(p: tuple[int, int, int]) -> bool:
        return p[0] - p[1] > red * 0.6 and p[0] - p[2] > red * 0.6

    rows = [y for y in range(height) if sum(reddish(px[x, y]) for x in range(width)) > 200]
    groups: list[list[int]] = []
    for y in rows:
        if groups and y - groups[-1][-1] <= 2:
            groups[-1].append(y)
        else:
            groups.append([y])
    expected = sum(len(i.bands) - 1 for i in CHART_INSTRUMENTS)
    assert len(groups) == expected == 9  # 4 PHQ-9 + 3 GAD-7 + 2 PSS-10 thresholds


def test_chart_bands_come_from_the_catalog() -> None:
    assert chart_instruments(REPO / "jobs") == CHART_INSTRUMENTS
    assert chart_instruments(Path("/nonexistent")) == CHART_INSTRUMENTS


def test_client_folders_are_added_to_client_rows() -> None:
    out = get_callable("vault_client_folders")({"items": list(reversed(CLIENTS))}, ctx())
    assert [r["client_id"] for r in out["items"]] == ["c-1", "c-2"]
    assert out["items"][0]["client_folder"] == client_folder(CLIENTS[0])
    assert all("_folder" not in r for r in out["items"])
    assert out["stats"]["output"] == 2


def test_chart_ignores_process_wide_matplotlib_settings() -> None:
    import matplotlib

    expected = render_chart(SERIES)
    with matplotlib.rc_context({"lines.linewidth": 7, "font.size": 20, "axes.grid": True}):
        assert render_chart(SERIES) == expected
