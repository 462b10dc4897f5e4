"""The safety sensor sees every flag of a run, whatever its size (issue 11).

The shipped sensor paged 1,000 rows by timestamp; every row of one run shares
that timestamp, so past 1,000 it got the same page back forever and went blind.
"""

from __future__ import annotations

import dagster as dg
import pytest
from helpers import canonical_rows, events, plant

from lorchestra_dagster.defs.build import build_defs
from lorchestra_dagster.defs.resources import StoracleResource
from lorchestra_dagster.engine import execute_with
from lorchestra_dagster.storacle.plan import make_plan

# slow (~20 s): the failure needs more than 1,000 flags scored in one run (formation of 1,100).
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

N = 1_100  # more than one 1,000-row page, all scored in one run (one processed_at)


def test_more_than_1000_flags_of_one_run_all_alert(services, instance) -> None:
    plant(services.client, canonical_rows(N))
    form = execute_with({"job_id": "formation_form_responses"}, services)
    assert form.status == "succeeded", form.error
    # Scoring stamps processed_at per written page; the case that blinded the old sensor
    # is every flag of a run under one timestamp, so the flags are given one here.
    flags = services.client.query({"dataset": "derived", "table": "safety_flags"})
    first = min(f["processed_at"] for f in flags)
    op = {
        "dataset": "derived",
        "table": "safety_flags",
        "key_columns": ["flag_id"],
        "rows": [{**f, "processed_at": first} for f in flags],
        "volatile_columns": [],
    }
    services.client.execute_plan(
        make_plan([("bq.upsert", op)], {"run_id": "one-stamp"}).model_dump(mode="json")
    )
    [stamps] = services.client.sql(
        "SELECT count(DISTINCT processed_at) AS n, count(*) AS rows FROM derived.safety_flags "
        "WHERE code = 'phq9_item9'"
    )
    assert stamps == {"n": 1, "rows": N}

    sensor = build_defs().resolve_sensor_def("clinical_safety_sensor")
    res = {"storacle": StoracleResource()}
    cursor = None
    for _ in range(3):
        tick = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=cursor, resources=res)
        )
        cursor = tick.cursor
    alerts = [e for e in events(services.client) if e["details"]["code"] == "phq9_item9"]
    assert len(alerts) == N
    [n] = services.client.sql("SELECT count(*) AS n FROM derived.alerts WHERE status = 'open'")
    assert n["n"] == N
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
