"""measures.md and the chart say which bands are local and which scores were prorated."""

from __future__ import annotations

import base64
import io
from datetime import date
from pathlib import Path

import pytest
from kit import REPO
from PIL import Image

from lorchestra_dagster.callables import CallContext, collect, get_callable
from lorchestra_dagster.callables.charts import chart_instruments, render_chart
from lorchestra_dagster.callables.vault_common import client_folder

pytestmark = pytest.mark.unit

CTX = CallContext(catalog_dir=REPO / "jobs", home=Path("/nonexistent"))
CLIENT = {
    "client_id": "c-1",
    "idem_key": "dataverse:practice:contact:c-1",
    "first_name": "Zoë",
    "last_name": "O'Brien",
    "updated_at": "2026-01-01T09:00:00Z",
}


def _obs(event, code, value, when, severity, **extra):
    return {
        "idem_key": f"{event}:{code}",
        "measurement_event_idem_key": event,
        "client_id": "c-1",
        "instrument_code": code.rsplit("_", 1)[0] if code != "pss_10_total" else "pss_10",
        "measure_code": code,
        "value_numeric": value,
        "severity_code": severity,
        "severity_label": None,
        "flags": "[]",
        "occurred_at": when,
        "updated_at": when,
        **extra,
    }


ROWS = [
    _obs("ev1", "phq9_total", 9, "2026-01-05T10:00:00+00:00", "mild",
         prorated=True, crosses_cutoff=True),
    _obs("ev1", "gad7_total", 5, "2026-01-05T10:00:00+00:00", "mild",
         prorated=True, crosses_cutoff=False),
    _obs("ev2", "phq9_total", 6, "2026-02-05T10:00:00+00:00", "mild",
         prorated=False, crosses_cutoff=False),
    _obs("ev2", "pss_10_total", 20, "2026-02-05T10:00:00+00:00", "moderate"),
    {**_obs("ev2", "ipip_neo_60_c_total", 36, "2026-02-05T10:00:00+00:00", "average"),
     "instrument_code": "ipip_neo_60_c"},
]  # fmt: skip


def _vault_measures(params: dict, ctx: CallContext) -> dict:
    """The callable's result as one (its pages joined)."""
    return collect(get_callable("vault_measures")(params, ctx))


def _measures_md(rows=ROWS) -> str:
    out = _vault_measures({"clients": [CLIENT], "measurements": rows}, CTX)
    return out["items"][0]["content"]


def test_measures_md_marks_local_bands_and_prorated_scores():
    body = _measures_md()
    # All scores: local band sets say so, published ones do not.
    assert (
        "| 2026-02-05 | ipip_neo_60_c | ipip_neo_60_c_total | 36 | average (local bands) |" in body
    )
    assert "| 2026-02-05 | pss_10 | pss_10_total | 20 | moderate (local bands) |" in body
    assert "| 2026-02-05 | phq9 | phq9_total | 6 | mild |" in body
    # Prorated scores are marked, and a band that depends on the missing item too.
    assert "| 2026-01-05 | phq9 | phq9_total | 9 (prorated) | mild (band uncertain) |" in body
    assert "| 2026-01-05 | gad7 | gad7_total | 5 (prorated) | mild |" in body
    # Totals over time carry the same marks; a local band set says so in its column.
    assert "| Date | PHQ-9 | GAD-7 | PSS-10 (local bands) |" in body
    assert "| 2026-01-05 | 9 (mild; prorated, band uncertain) | 5 (mild; prorated) |  |" in body
    assert "| 2026-02-05 | 6 (mild) |  | 20 (moderate) |" in body
    # The page says where each band set comes from and what the marks mean.
    about = body.split("## About these scores", 1)[1]
    assert "`phq9` Patient Health Questionnaire-9 — published bands: Kroenke" in about
    assert "`pss_10` Perceived Stress Scale (10-item) — local bands: " in about
    assert "`ipip_neo_60_c` IPIP-NEO-60 Conscientiousness — local bands: " in about
    assert "prorated" in about and "band uncertain" in about


def test_rows_without_the_marks_still_render():
    rows = [{k: v for k, v in r.items() if k not in ("prorated", "crosses_cutoff")} for r in ROWS]
    body = _measures_md(rows)
    assert "| 2026-01-05 | phq9 | phq9_total | 9 | mild |" in body


def test_a_change_of_marks_redraws_the_client():
    first = _vault_measures({"clients": [CLIENT], "measurements": ROWS}, CTX)
    plain = [{**r, "crosses_cutoff": False} for r in ROWS]
    second = _vault_measures(
        {"clients": [CLIENT], "measurements": plain, "previous": first["renders"]}, CTX
    )
    assert second["rendered"] == 1
    same = _vault_measures(
        {"clients": [CLIENT], "measurements": ROWS, "previous": first["renders"]}, CTX
    )
    assert same["rendered"] == 0


def test_chart_marks_local_bands_and_prorated_points():
    charted = {i.measure_code: i for i in chart_instruments(REPO / "jobs")}
    assert charted["pss_10_total"].local_bands is True
    assert charted["phq9_total"].local_bands is False
    plain = {"phq9_total": [(date(2026, 1, 5), 9.0), (date(2026, 2, 5), 6.0)]}
    marked = {"phq9_total": [(date(2026, 1, 5), 9.0, "crosses_cutoff"), (date(2026, 2, 5), 6.0)]}
    prorated = {"phq9_total": [(date(2026, 1, 5), 9.0, "prorated"), (date(2026, 2, 5), 6.0)]}
    pngs = [render_chart(s, tuple(charted.values())) for s in (plain, marked, prorated)]
    assert len(set(pngs)) == 3
    # The vault's chart for ROWS is the marked one.
    out = _vault_measures({"clients": [CLIENT], "measurements": ROWS}, CTX)
    png = base64.b64decode(out["items"][1]["content"])
    assert Image.open(io.BytesIO(png)).size == Image.open(io.BytesIO(pngs[0])).size
    assert out["items"][0]["path"] == f"clients/{client_folder(CLIENT)}/measures.md"


def test_a_screen_ended_at_its_gate_says_so():
    ended = {**_obs("ev3", "pc_ptsd_5_total", 0, "2026-03-01T10:00:00+00:00", "negative"),
             "instrument_code": "pc_ptsd_5", "gate": "ended"}  # fmt: skip
    passed = {**ended, "idem_key": "ev4:pc_ptsd_5_total", "gate": "passed",
              "occurred_at": "2026-03-02T10:00:00+00:00"}  # fmt: skip
    body = _measures_md([ended, passed])
    assert (
        "| 2026-03-01 | pc_ptsd_5 | pc_ptsd_5_total | 0 | negative (no trauma exposure reported) |"
        in body
    )
    assert "| 2026-03-02 | pc_ptsd_5 | pc_ptsd_5_total | 0 | negative |" in body
