"""``make demo``'s last screen, in order: where things are, the alerts to act on, what next.

Fast: the printing functions on a planted vault, no run (the slow README and
browser tests run the real demo and check the same lines in its output).
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from rich.console import Console

from lorchestra_dagster import demo
from lorchestra_dagster.settings import Settings

pytestmark = pytest.mark.unit

ALERTS = [
    {
        "alert_id": f"a{n:011x}",
        "severity": "critical",
        "code": "phq9_item9",
        "client_id": "1ebaf9a3-03e5-4460-a4aa-0123456789ab",
        "occurred_at": "2026-08-27T10:00:00Z",
    }
    for n in range(3)
]


def _screen(monkeypatch, tmp_path, alerts, width=80):
    out = io.StringIO()
    monkeypatch.setattr(demo, "console", Console(file=out, width=width, color_system=None))
    settings = Settings.from_env(home=tmp_path / "home")
    settings.vault_dir.mkdir(parents=True)
    (settings.vault_dir / "today.md").write_text("# Today\n")
    (settings.vault_dir / "alerts.md").write_text("# Alerts\n")
    demo.print_next_steps(settings, SimpleNamespace(run_id="7e1d944c-8a86-4c8e-9b0e"), alerts)
    return settings, out.getvalue()


def test_the_demo_ends_with_vault_today_alerts_and_the_next_command(monkeypatch, tmp_path):
    settings, text = _screen(monkeypatch, tmp_path, ALERTS)
    lines = text.splitlines()
    order = [
        f"vault: {settings.vault_dir}",
        f"this morning's page: {settings.vault_dir / 'today.md'}",
        "open safety alerts (3)",
        ALERTS[0]["alert_id"],
        f".venv/bin/lorchestra alerts ack {ALERTS[0]['alert_id']} --note",
        f"open alerts: {settings.vault_dir / 'alerts.md'}",
        "next:",
        "make ui",
    ]
    at = [next(i for i, ln in enumerate(lines) if want in ln) for want in order]
    assert at == sorted(at), list(zip(order, at, strict=True))
    assert lines[-1].strip().startswith(".venv/bin/lorchestra sandbox down"), lines[-3:]
    # Every id in full at 80 columns (wrapped, never cut with an ellipsis).
    assert "…" not in text
    assert all(a["alert_id"] in text for a in ALERTS)
    # The ack command is one line a person can copy.
    (ack,) = [ln for ln in lines if "alerts ack" in ln]
    assert ack.rstrip().endswith('--note "called, safety plan"'), ack


def test_a_client_id_wraps_in_its_cell_never_cut(monkeypatch, tmp_path):
    _, text = _screen(monkeypatch, tmp_path, ALERTS[:1], width=60)
    cells = [ln.split("│")[4].strip() for ln in text.splitlines() if ln.count("│") == 6]
    assert "".join(cells) == ALERTS[0]["client_id"], cells


def test_no_alerts_says_so(monkeypatch, tmp_path):
    _, text = _screen(monkeypatch, tmp_path, [])
    assert "open safety alerts: none" in text and "alerts ack" not in text
