"""Every risk answer reaches the clinician, end to end on the loopback sandbox (issue 11).

The synthetic practice gets planted answers in its Google Forms responses: an
item 9 = "More than half the days", a reworded item-10 option (with item 9 =
"Several days") that no spec option matches, an item 9 left blank, and later an
edited answer. ``pipeline.daily_all`` runs as a Dagster run (the CLI's path);
the alerts must be in the warehouse, in ``ops.events``, at a loopback webhook
and in the vault at the end of that one run, and the day must not stop.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest
from kit import JOBS
from run_helpers import run_pipeline
from typer.testing import CliRunner

from lorchestra_dagster.alerts import list_alerts
from lorchestra_dagster.alerts.store import alert_id_of, history_of
from lorchestra_dagster.cli import app
from lorchestra_dagster.engine import Services
from lorchestra_dagster.instruments import load_bindings
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.sources.sandbox.generate import generate
from lorchestra_dagster.sources.sandbox.server import sandbox_env, serve_in_thread

# slow (~1 min): two daily_all runs of a 6-client practice through Dagster.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REWORDED = "Quite hard, honestly"
QID = {
    q.item: q.question_id
    for q in load_bindings(JOBS)["intake_01"].questions
    if q.instrument == "phq9"
}


def _set(response: dict, item: int, text: str | None) -> None:
    qid = QID[item]
    if text is None:
        response["answers"].pop(qid, None)
    else:
        response["answers"][qid] = {
            "questionId": qid,
            "textAnswers": {"answers": [{"value": text}]},
        }


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def do_POST(self) -> None:  # http.server's name
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).bodies.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def _key(response: dict) -> str:
    return f"google_forms:intake_01:form_response:{response['responseId']}#form_response"


def test_planted_risk_answers_reach_the_clinician_on_the_daily_run(tmp_path: Path) -> None:
    practice = generate(6, 23, catalog_dir=JOBS)
    responses = practice.streams["forms_intake_01"]
    assert len(responses) >= 3
    planted, broken, skipped = responses[0], responses[1], responses[2]
    _set(planted, 9, "More than half the days")
    _set(broken, 9, "Several days")
    _set(broken, 10, REWORDED)
    _set(skipped, 9, None)

    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_port}/notify"
    home = Path(os.environ["LORCHESTRA_HOME"])
    try:
        with serve_in_thread(practice) as sandbox:
            env = {
                **os.environ,
                "LORCHESTRA_SANDBOX_URL": sandbox.url,
                **sandbox_env(),
                "LORCHESTRA_ALERT_WEBHOOK": hook,
            }
            services = Services.from_settings(Settings.from_env(jobs_dir=JOBS, home=home), env=env)
            first = run_pipeline("pipeline.daily_all", services, max_workers=2)
            # One unreadable answer no longer stops the day: every stage ran.
            assert first.status == "succeeded", first.failures
            assert first.alerts and first.alerts["errors"] == []

            alerts = {a["flag_id"]: a for a in list_alerts(services.client)}
            expect = {
                f"{_key(planted)}:phq9_item9": "critical",
                f"{_key(broken)}:phq9_item9": "critical",
                f"{_key(broken)}:submission_quarantined": "warning",
                f"{_key(skipped)}:phq9_item9_unanswered": "high",
            }
            for flag_id, severity in expect.items():
                assert alerts[flag_id]["severity"] == severity, flag_id
                assert alerts[flag_id]["status"] == "open"
            assert alert_id_of(f"{_key(planted)}:phq9_item9") in first.alerts["new"]
            # ops.events, one row per alert; the webhook heard every critical one, no answers
            kinds = services.client.sql(
                "SELECT count(*) AS n FROM ops.events WHERE kind = 'clinical_safety_alert'"
            )
            assert kinds[0]["n"] == len(list_alerts(services.client, show_all=True))
            critical = {a["alert_id"] for a in alerts.values() if a["severity"] == "critical"}
            assert {b["alert_id"] for b in _Receiver.bodies} == critical
            heard = json.dumps(_Receiver.bodies)
            assert REWORDED not in heard and "@" not in heard.replace("alerts ack", "")

            # The vault has them at the end of the same run, quarantine included.
            vault_alerts = (home / "vault" / "alerts.md").read_text()
            for flag_id in expect:
                assert f"`{alerts[flag_id]['alert_id']}`" in vault_alerts
            assert "not scored (phq9 item 10: E_ANSWER_TEXT)" in vault_alerts
            assert REWORDED not in vault_alerts
            planted_id = alerts[f"{_key(planted)}:phq9_item9"]["alert_id"]
            if alerts[f"{_key(planted)}:phq9_item9"]["client_id"]:  # a client's own files too
                files = list((home / "vault" / "clients").glob("*/contact.md"))
                files += list((home / "vault" / "clients").glob("*/measures.md"))
                assert sum(planted_id in p.read_text() for p in files) == 2
            # The Dagster asset check shows the quarantine.
            from lorchestra_dagster.launch import open_instance

            with open_instance(services.settings) as instance:
                check = dg.AssetCheckKey(
                    dg.AssetKey(["formation", "form_responses"]),
                    "no_quarantined_submissions",
                )
                [record] = instance.event_log_storage.get_asset_check_execution_history(
                    check, limit=1
                )
                evaluation = record.event.dagster_event.event_specific_data
                assert evaluation.passed is False
                assert evaluation.metadata["quarantined"].value == 1

            # The clinician acknowledges the planted alert from the CLI.
            res = CliRunner().invoke(
                app, ["alerts", "ack", planted_id, "--note", "called", "--by", "dr.k"]
            )
            assert res.exit_code == 0, res.output

            # Next day: the client edits item 9 back to "Not at all"; the broken answer is fixed.
            later = datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            _set(planted, 9, "Not at all")
            _set(broken, 10, "Very difficult")
            for r in (planted, broken):
                r["lastSubmittedTime"] = later
            practice.generation += 1  # the sandbox re-indexes its streams
            second = run_pipeline("pipeline.daily_all", services, max_workers=2)
            assert second.status == "succeeded", second.failures

            every = {a["flag_id"]: a for a in list_alerts(services.client, show_all=True)}
            edited = every[f"{_key(planted)}:phq9_item9"]
            assert edited["status"] == "acknowledged" and edited["source_changed"] is True
            assert [h["action"] for h in history_of(services.client, planted_id)] == [
                "opened",
                "notified",
                "acknowledged",
                "source_changed",
            ]
            fixed = every[f"{_key(broken)}:submission_quarantined"]
            assert fixed["source_changed"] is True and fixed["status"] == "open"
            # the broken item 9 = 1 stays a raised, open alert
            assert every[f"{_key(broken)}:phq9_item9"]["source_changed"] is False
            events = services.client.sql(
                f"SELECT count(*) AS n FROM derived.measurement_events WHERE idem_key = "
                f"'{_key(broken)}'"
            )
            assert events[0]["n"] == 1  # the fix scored it
            vault_alerts = (home / "vault" / "alerts.md").read_text()
            assert "source changed since raised: review" in vault_alerts
            services.client.close()
    finally:
        server.shutdown()
