"""Alerts have a lifecycle a clinician can act on, and never vanish when their source changes.

Real warehouse (DuckDB through storacle), the real formation job and view, the
real CLI, a real loopback HTTP receiver for the notification hook.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from helpers import events, plant
from test_finalform import _intake_01
from test_safety_rules import REWORDED, _with_answer
from typer.testing import CliRunner

from lorchestra_dagster.alerts import AlertError, list_alerts, sync_alerts, transition
from lorchestra_dagster.alerts.store import alert_id_of, history_of
from lorchestra_dagster.cli import app
from lorchestra_dagster.engine import execute_with

pytestmark = pytest.mark.e2e


def _now() -> str:
    """A re-canonization stamp later than the last scoring (the incremental read compares)."""
    return datetime.now(tz=UTC).isoformat()


def _formation(services) -> None:
    run = execute_with({"job_id": "formation_form_responses"}, services)
    assert run.status == "succeeded", run.error
    view = execute_with({"job_id": "view_proj_alerts"}, services)
    assert view.status == "succeeded", view.error


def _by_code(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["flag_id"].split(":")[3].split("#")[0], r["code"]): r for r in rows}


@pytest.fixture
def planted(services):
    """R1 item 9 = 2; R2 item 9 skipped; R3 a reworded item-10 option (and item 9 = 2)."""
    rows = [
        _intake_01("R1"),
        _with_answer(_intake_01("R2"), 9, None),
        _with_answer(_intake_01("R3"), 10, REWORDED),
    ]
    plant(services.client, rows)
    _formation(services)
    return rows


def test_flags_become_alerts_with_history_and_a_lifecycle(services, planted) -> None:
    # Before any sync the vault's view already shows every flag as open.
    view = _by_code(list_alerts(services.client))
    assert set(view) == {
        ("R1", "phq9_item9"),
        ("R2", "phq9_item9_unanswered"),
        ("R3", "phq9_item9"),
        ("R3", "submission_quarantined"),
    }
    report = sync_alerts(services.client, env={})
    assert len(report.opened) == 4 and report.open_critical == 2
    alerts = _by_code(list_alerts(services.client))
    assert {k: a["alert_id"] for k, a in alerts.items()} == {
        k: v["alert_id"] for k, v in view.items()
    }  # the view's ids are the sync's ids
    ordered = [a["severity"] for a in list_alerts(services.client)]
    assert ordered == ["critical", "critical", "high", "warning"]
    assert len(events(services.client)) == 4
    again = sync_alerts(services.client, env={})
    assert again.opened == [] and again.flags_read == 4  # the fresh lookback, idempotent
    assert sync_alerts(services.client, env={}, lookback=timedelta(0)).flags_read == 0

    r1 = alerts[("R1", "phq9_item9")]["alert_id"]
    transition(services.client, r1, "ack", actor="dr.k", note="called, safety plan")
    with pytest.raises(AlertError, match="only an open alert"):
        transition(services.client, r1, "ack", actor="dr.k", note="again")
    with pytest.raises(AlertError, match="note is required"):
        transition(services.client, r1, "resolve", actor="dr.k", note=" ")
    assert r1 not in {a["alert_id"] for a in list_alerts(services.client)}  # open only
    [acked] = [a for a in list_alerts(services.client, show_all=True) if a["alert_id"] == r1]
    assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "dr.k")
    assert acked["acknowledge_note"] == "called, safety plan"
    transition(services.client, r1, "resolve", actor="dr.k", note="seen in session")
    with pytest.raises(AlertError, match="already resolved"):
        transition(services.client, r1, "resolve", actor="dr.k", note="x")
    with pytest.raises(AlertError, match="no alert"):
        transition(services.client, "0" * 12, "ack", actor="dr.k", note="x")
    actions = [h["action"] for h in history_of(services.client, r1)]
    assert actions == ["opened", "acknowledged", "resolved"]


def test_an_edited_answer_marks_the_alert_and_a_fix_scores_the_quarantine(
    services, planted
) -> None:
    sync_alerts(services.client, env={})
    r1 = alert_id_of(f"{planted[0]['idem_key']}:phq9_item9")
    quarantine = alert_id_of(f"{planted[2]['idem_key']}:submission_quarantined")
    transition(services.client, r1, "ack", actor="dr.k", note="calling today")

    # The client edits item 9 back to "Not at all"; the form is re-canonized and re-scored.
    edited = _with_answer(_intake_01("R1"), 9, "Not at all")
    fixed = _with_answer(_intake_01("R3"), 10, "Very difficult")
    plant(services.client, [edited, fixed], at=_now())
    _formation(services)
    report = sync_alerts(services.client, env={})
    assert report.changed == 2 and report.opened == []
    every = {a["alert_id"]: a for a in list_alerts(services.client, show_all=True)}
    assert every[r1]["status"] == "acknowledged" and every[r1]["source_changed"] is True
    assert every[quarantine]["source_changed"] is True and every[quarantine]["status"] == "open"
    [scored] = services.client.sql(
        "SELECT count(*) AS n FROM derived.measurement_events "
        f"WHERE idem_key = '{planted[2]['idem_key']}'"
    )
    assert scored["n"] == 1  # the fix scored the quarantined submission
    assert [h["action"] for h in history_of(services.client, r1)] == [
        "opened",
        "acknowledged",
        "source_changed",
    ]
    # Resolved, then the answer goes up again: the alert reopens.
    transition(services.client, r1, "resolve", actor="dr.k", note="no risk on review")
    plant(services.client, [_intake_01("R1")], at=_now())
    _formation(services)
    sync_alerts(services.client, env={})
    again = {a["alert_id"]: a for a in list_alerts(services.client)}
    assert again[r1]["status"] == "open" and again[r1]["source_changed"] is False
    assert history_of(services.client, r1)[-1]["action"] == "reopened"


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[dict] = []
    status = 200

    def do_POST(self) -> None:  # http.server's name
        length = int(self.headers["content-length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def receiver():
    _Receiver.bodies, _Receiver.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", _Receiver
    server.shutdown()


def test_new_critical_alerts_reach_a_loopback_webhook_once(services, planted, receiver) -> None:
    url, got = receiver
    got.status = 503
    failed = sync_alerts(services.client, env={"LORCHESTRA_ALERT_WEBHOOK": url})
    assert failed.notified == 0 and len(failed.notify_errors) == 2
    assert len(events(services.client, "alert_notification_failed")) == 2
    got.status, got.bodies = 200, []
    ok = sync_alerts(services.client, env={"LORCHESTRA_ALERT_WEBHOOK": url})  # retried
    assert ok.notified == 2 and ok.notify_errors == []
    assert sorted(b["code"] for b in got.bodies) == ["phq9_item9", "phq9_item9"]
    assert all(b["severity"] == "critical" and b["alert_id"] for b in got.bodies)
    text = json.dumps(got.bodies)
    assert "example.org" not in text and "More than half" not in text and REWORDED not in text
    assert sync_alerts(services.client, env={"LORCHESTRA_ALERT_WEBHOOK": url}).notified == 0
    assert len(got.bodies) == 2
    with pytest.raises(Exception, match="loopback"):
        sync_alerts(services.client, env={"LORCHESTRA_ALERT_WEBHOOK": "http://example.org/x"})


def test_a_notification_command_gets_the_notice_on_stdin(services, planted, tmp_path: Path) -> None:
    out = tmp_path / "notices.jsonl"
    script = f"import sys; open({str(out)!r}, 'a').write(sys.stdin.read() + chr(10))"
    cmd = f"{sys.executable} -c {json.dumps(script)}"
    report = sync_alerts(services.client, env={"LORCHESTRA_ALERT_COMMAND": cmd})
    assert report.notified == 2
    notices = [json.loads(line) for line in out.read_text().splitlines()]
    assert {n["code"] for n in notices} == {"phq9_item9"}
    assert notices[0]["acknowledge"].startswith("lorchestra alerts ack ")


def test_cli_lists_acknowledges_and_resolves(services, planted) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["alerts", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert len(rows) == 4
    assert {"alert_id", "code", "severity", "client", "occurred_at", "status"} <= set(rows[0])
    first = rows[0]["alert_id"]
    res = runner.invoke(app, ["alerts", "ack", first, "--note", "on it", "--by", "dr.k"])
    assert res.exit_code == 0, res.output
    assert "acknowledged by dr.k" in res.stdout
    assert len(json.loads(runner.invoke(app, ["alerts", "list", "--json"]).stdout)) == 3
    every = json.loads(runner.invoke(app, ["alerts", "list", "--all", "--json"]).stdout)
    [acked] = [r for r in every if r["alert_id"] == first]
    assert acked["acknowledge_note"] == "on it"
    res = runner.invoke(app, ["alerts", "resolve", first, "--note", "done"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["alerts", "resolve", first, "--note", "done"])
    assert res.exit_code == 1 and "already resolved" in res.output
    table = runner.invoke(app, ["alerts", "list"])
    assert table.exit_code == 0 and "lorchestra alerts ack" in table.output
