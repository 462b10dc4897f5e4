"""``vault_measures`` draws only the clients whose inputs changed since the state it is given."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from kit import REPO

from lorchestra_dagster.callables import CallContext, collect, get_callable
from lorchestra_dagster.callables.charts import chart_instruments
from lorchestra_dagster.callables.vault_common import client_folder
from lorchestra_dagster.callables.vault_measures import (
    ARTIFACT,
    input_sha256,
    renderer_version,
)
from lorchestra_dagster.errors import PermanentError

pytestmark = pytest.mark.unit

STATE_COLUMNS = {"client_id", "artifact", "input_sha256", "renderer_version"}


def ctx() -> CallContext:
    return CallContext(catalog_dir=REPO / "jobs", home=Path("/nonexistent"))


def client(cid: str, first: str, last: str) -> dict:
    return {
        "client_id": cid,
        "idem_key": f"dataverse:practice:contact:{cid}",
        "first_name": first,
        "last_name": last,
        "email": f"{first.lower()}@example.com",
        "updated_at": "2026-01-01T09:00:00+00:00",
    }


def score(cid: str, event: str, code: str, value: float, when: str) -> dict:
    return {
        "idem_key": f"{event}:{code}",
        "measurement_event_idem_key": event,
        "client_id": cid,
        "measure_code": code,
        "instrument_code": code.removesuffix("_total"),
        "value_numeric": value,
        "severity_code": None,
        "severity_label": None,
        "flags": "[]",
        "occurred_at": when,
        "updated_at": when,
    }


CLIENTS = [
    client("c-1", "Ada", "Ashgrove"),
    client("c-2", "Ben", "Birch"),
    client("c-3", "Cy", "Cole"),
]
MEASUREMENTS = [
    score("c-1", "e1", "phq9_total", 14, "2026-01-05T10:00:00+00:00"),
    score("c-1", "e2", "phq9_total", 9, "2026-02-05T10:00:00+00:00"),
    score("c-2", "e3", "gad7_total", 7, "2026-01-06T10:00:00+00:00"),
    score("c-3", "e4", "pss_10_total", 20, "2026-01-07T10:00:00+00:00"),
]


def render(clients=CLIENTS, measurements=MEASUREMENTS, previous=None, **extra) -> dict:
    params = {"clients": clients, "measurements": measurements, **extra}
    if previous is not None:
        params["previous"] = previous
    return collect(get_callable("vault_measures")(params, ctx()))


def drawn(out: dict) -> set[str]:
    """Client folders of the items: every drawn client has its md and its png."""
    paths = [i["path"] for i in out["items"]]
    folders = {p.split("/")[1] for p in paths}
    assert sorted(paths) == sorted(
        f"clients/{f}/measures.{ext}" for f in folders for ext in ("md", "png")
    )
    return folders


def folder(cid: str) -> str:
    return client_folder(next(c for c in CLIENTS if c["client_id"] == cid))


@pytest.fixture(scope="module")
def first() -> dict:
    return render()


def test_first_run_draws_every_client_and_returns_their_state(first) -> None:
    assert drawn(first) == {folder("c-1"), folder("c-2"), folder("c-3")}
    assert first["rendered"] == 3 and first["unchanged"] == 0
    assert [r["client_id"] for r in first["renders"]] == ["c-1", "c-2", "c-3"]
    for row in first["renders"]:
        # keys and hashes only: no name, score or date reaches the warehouse table
        assert set(row) == STATE_COLUMNS
        assert row["artifact"] == ARTIFACT and row["renderer_version"] == renderer_version()
        assert len(row["input_sha256"]) == 64
    assert first["stats"]["output"] == 6


def test_a_second_identical_run_draws_nobody(first) -> None:
    again = render(previous=first["renders"])
    assert again["items"] == [] and again["renders"] == []
    assert again["rendered"] == 0 and again["unchanged"] == 3
    # row order is not an input
    shuffled = render(measurements=list(reversed(MEASUREMENTS)), previous=first["renders"])
    assert shuffled["items"] == []


def test_a_new_score_draws_only_its_client(first) -> None:
    new = score("c-2", "e5", "gad7_total", 12, "2026-03-01T10:00:00+00:00")
    out = render(measurements=[*MEASUREMENTS, new], previous=first["renders"])
    assert drawn(out) == {folder("c-2")}
    [row] = out["renders"]
    assert row["client_id"] == "c-2"
    assert (
        row["input_sha256"]
        != next(r for r in first["renders"] if r["client_id"] == "c-2")["input_sha256"]
    )
    assert out["unchanged"] == 2
    # the files are what a full render draws for that client
    full = {i["path"]: i for i in render(measurements=[*MEASUREMENTS, new])["items"]}
    assert all(full[i["path"]] == i for i in out["items"])


def test_client_columns_redraw_only_when_the_files_show_them(first) -> None:
    moved = [
        {**c, "email": "new@example.com", "updated_at": "2026-04-01T00:00:00Z"} for c in CLIENTS
    ]
    assert render(clients=moved, previous=first["renders"])["items"] == []
    renamed = [{**c, "last_name": "Abbot"} if c["client_id"] == "c-1" else c for c in CLIENTS]
    out = render(clients=renamed, previous=first["renders"])
    assert [r["client_id"] for r in out["renders"]] == ["c-1"]


def test_state_that_does_not_match_is_redrawn(first) -> None:
    stale = [
        {**r, "renderer_version": "measures/0"} if r["client_id"] == "c-1" else r
        for r in first["renders"]
    ]
    assert [r["client_id"] for r in render(previous=stale)["renders"]] == ["c-1"]
    other_artifact = [{**r, "artifact": "contact"} for r in first["renders"]]
    assert render(previous=other_artifact)["rendered"] == 3
    missing = [r for r in first["renders"] if r["client_id"] != "c-3"]
    assert [r["client_id"] for r in render(previous=missing)["renders"]] == ["c-3"]


def test_rerender_draws_everyone_whatever_the_state(first) -> None:
    out = render(previous=first["renders"], rerender=True)
    assert out["items"] == first["items"] and out["renders"] == first["renders"]
    with pytest.raises(PermanentError, match="rerender"):
        render(previous=first["renders"], rerender="yes")


def test_a_client_whose_scores_left_gets_no_files_as_before(first) -> None:
    remaining = [m for m in MEASUREMENTS if m["client_id"] != "c-3"]
    out = render(measurements=remaining, previous=first["renders"])
    assert out["items"] == [] and out["renders"] == []
    assert out["vanished"] == 1 and out["clients_with_measures"] == 2
    # and a full render (no state) writes no file for them either: today's behaviour
    assert folder("c-3") not in drawn(render(measurements=remaining))


def test_the_hash_covers_bands_and_renderer_version() -> None:
    charted = chart_instruments(REPO / "jobs")
    rows = [m for m in MEASUREMENTS if m["client_id"] == "c-1"]
    who = {**CLIENTS[0], "_folder": folder("c-1")}
    base = input_sha256(who, rows, charted, "v1")
    assert input_sha256(who, rows, charted, "v1") == base
    assert input_sha256(who, rows, charted, "v2") != base
    moved = (replace(charted[0], max_score=30.0), *charted[1:])
    assert input_sha256(who, rows, moved, "v1") != base


def test_bad_state_is_an_error_without_client_data() -> None:
    with pytest.raises(PermanentError, match="previous") as err:
        render(previous=[{"artifact": ARTIFACT, "input_sha256": "x"}])
    assert "Ada" not in str(err.value)
    with pytest.raises(PermanentError, match="previous"):
        render(previous={"c-1": "x"})
