"""Every connector against the loopback sandbox: paging, windows, cursor, faults, bad input."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from kit import free_port
from sources_kit import env_for, run_injest, write_catalog

from lorchestra_dagster.errors import PermanentError, TransientError
from lorchestra_dagster.sources.sandbox.streams import STREAMS
from lorchestra_dagster.timestamps import parse_utc as to_utc

pytestmark = pytest.mark.e2e

VENDOR_STREAMS = sorted(STREAMS)
# One stream per connector, with the sandbox path its data requests hit.
BY_CONNECTOR = {
    "gmail": ("gmail_acct1", "/gmail/v1/users/me/messages"),
    "google_forms": ("forms_followup", "/v1/forms/followup/responses"),
    "exchange": ("exchange_office", "/v1.0/users/"),
    "dataverse": ("dataverse_sessions", "/api/data/v9.2/cr_clientsessions"),
    "stripe": ("stripe_invoices", "/v1/invoices"),
}
CRED_VAR = {
    "gmail": "GMAIL_ACCT1_TOKEN",
    "google_forms": "GOOGLE_FORMS_TOKEN",
    "exchange": "EXCHANGE_CLIENT_SECRET",
    "dataverse": "DATAVERSE_CLIENT_SECRET",
    "stripe": "STRIPE_API_KEY",
}


def ts_of(stream: str, obj: dict) -> datetime:
    value = obj[STREAMS[stream].source_ts_field]
    return to_utc(value)


def ids(stream: str, objs: list[dict]) -> list[str]:
    return [str(o[STREAMS[stream].id_field]) for o in objs]


@pytest.mark.parametrize("stream", VENDOR_STREAMS)
def test_full_fetch_returns_every_object_unchanged(sandbox, catalog, stream):
    out = run_injest(catalog, stream, env_for(sandbox))
    expected = sandbox.practice.streams[stream]
    assert out["stats"] == {
        "input": len(expected),
        "output": len(expected),
        "skipped": 0,
        "errors": 0,
    }
    got = {i: o for i, o in zip(ids(stream, out["items"]), out["items"], strict=True)}
    assert len(got) == len(expected) > 4  # more than one page of 4
    for obj in expected:
        assert got[str(obj[STREAMS[stream].id_field])] == obj


def _gap_cutoff(stream: str, objs: list[dict]) -> datetime:
    """A cutoff one second after an object, with no object within 2 s after it."""
    times = sorted({ts_of(stream, o).replace(microsecond=0) for o in objs})
    for a, b in zip(times[len(times) // 3 :], times[len(times) // 3 + 1 :], strict=False):
        if (b - a).total_seconds() >= 3:
            return a + timedelta(seconds=1)
    raise AssertionError("no gap found")


@pytest.mark.parametrize("stream", VENDOR_STREAMS)
def test_window_since_and_until_filter_at_the_source(sandbox, catalog, stream):
    objs = sandbox.practice.streams[stream]
    since = _gap_cutoff(stream, objs)
    later = [o for o in objs if ts_of(stream, o) > since]
    until = _gap_cutoff(stream, later) if len(later) > 3 else None
    expected = {
        i
        for o, i in zip(objs, ids(stream, objs), strict=True)
        if ts_of(stream, o) > since and (until is None or ts_of(stream, o) < until)
    }
    out = run_injest(
        catalog,
        stream,
        env_for(sandbox),
        window_since=since.isoformat(),
        until=until.isoformat() if until else None,
    )
    assert set(ids(stream, out["items"])) == expected
    assert 0 < len(expected) < len(objs)
    assert out["window"]["since"] == since.isoformat()


@pytest.mark.parametrize(
    "stream",
    ["dataverse_contacts", "gmail_acct2", "stripe_customers", "forms_intake_01", "exchange_office"],
)
def test_cursor_subtracts_the_overlap_window(sandbox, catalog, stream):
    objs = sandbox.practice.streams[stream]
    newest = max(objs, key=lambda o: ts_of(stream, o))
    cursor = ts_of(stream, newest)
    out = run_injest(catalog, stream, env_for(sandbox), since=cursor.isoformat())
    got = set(ids(stream, out["items"]))
    # The boundary object itself comes back (overlap), older ones outside 10 min do not.
    assert str(newest[STREAMS[stream].id_field]) in got
    window = cursor - timedelta(minutes=10)
    assert all(ts_of(stream, o) >= window - timedelta(seconds=1) for o in out["items"])
    assert out["window"]["since"] == (cursor - timedelta(minutes=10)).isoformat()


def test_cursor_after_newest_and_no_overlap_returns_nothing(sandbox, tmp_path):
    catalog = write_catalog(tmp_path / "c", overlap_minutes=0)
    future = datetime(2027, 1, 1, tzinfo=UTC).isoformat()
    for stream, _ in BY_CONNECTOR.values():
        assert run_injest(catalog, stream, env_for(sandbox), since=future)["items"] == []


def test_limit_caps_objects(sandbox, catalog):
    out = run_injest(catalog, "stripe_invoices", env_for(sandbox), limit=5)
    assert len(out["items"]) == 5


@pytest.mark.parametrize("connector", sorted(BY_CONNECTOR))
def test_429_is_retried_after_retry_after(sandbox, catalog, connector):
    stream, path = BY_CONNECTOR[connector]
    sandbox.faults.add("rate_limit", count=2, path_contains=path, retry_after=0.3)
    start = time.monotonic()
    out = run_injest(catalog, stream, env_for(sandbox))
    assert time.monotonic() - start >= 0.6
    assert len(out["items"]) == len(sandbox.practice.streams[stream])
    assert [k for k, _ in sandbox.faults.fired] == ["rate_limit", "rate_limit"]


@pytest.mark.parametrize("connector", sorted(BY_CONNECTOR))
def test_500_is_retried(sandbox, catalog, connector):
    stream, path = BY_CONNECTOR[connector]
    sandbox.faults.add("server_error", count=2, path_contains=path)
    out = run_injest(catalog, stream, env_for(sandbox))
    assert len(out["items"]) == len(sandbox.practice.streams[stream])
    assert len(sandbox.faults.fired) == 2


@pytest.mark.parametrize("connector", sorted(BY_CONNECTOR))
def test_persistent_5xx_raises_transient_error_after_bounded_attempts(sandbox, catalog, connector):
    stream, path = BY_CONNECTOR[connector]
    sandbox.faults.add("server_error", count=50, path_contains=path)
    with pytest.raises(TransientError) as info:
        run_injest(catalog, stream, env_for(sandbox))
    assert stream in str(info.value)
    assert len(sandbox.faults.fired) == 3  # max_attempts in the test catalog


@pytest.mark.parametrize("connector", sorted(BY_CONNECTOR))
def test_wrong_credential_is_permanent_and_names_the_variable(sandbox, catalog, connector):
    stream, _ = BY_CONNECTOR[connector]
    var = CRED_VAR[connector]
    with pytest.raises(PermanentError) as info:
        run_injest(catalog, stream, env_for(sandbox, **{var: "wrong-value"}))
    assert var in str(info.value) and stream in str(info.value)
    assert "wrong-value" not in str(info.value)


@pytest.mark.parametrize("connector", sorted(BY_CONNECTOR))
def test_malformed_page_names_stream_and_page(sandbox, catalog, connector):
    stream, path = BY_CONNECTOR[connector]
    sandbox.faults.add("malformed", count=1, path_contains=path)
    with pytest.raises(PermanentError) as info:
        run_injest(catalog, stream, env_for(sandbox))
    assert f"stream {stream!r}: page 1 is malformed" in str(info.value)


@pytest.mark.parametrize("connector", sorted(BY_CONNECTOR))
def test_missing_credential_variable_is_named(sandbox, catalog, connector):
    stream, _ = BY_CONNECTOR[connector]
    var = CRED_VAR[connector]
    env = env_for(sandbox)
    del env[var]
    with pytest.raises(PermanentError) as info:
        run_injest(catalog, stream, env)
    assert f"environment variable {var}" in str(info.value)


@pytest.mark.parametrize("connector", sorted(BY_CONNECTOR))
def test_unreachable_base_url_is_a_clear_permanent_error(tmp_path, connector):
    stream, _ = BY_CONNECTOR[connector]
    catalog = write_catalog(tmp_path / "c", max_attempts=2, timeout_s=2)
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PermanentError) as info:
        run_injest(catalog, stream, env_for(url=url))
    # One wording for every connector: stream, URL, why, the variable that sent it there.
    assert info.value.message == (
        f"stream {stream!r}: cannot reach {url} (connection refused); LORCHESTRA_SANDBOX_URL "
        "points there: start the sandbox (`lorchestra sandbox up`, then "
        '`eval "$(lorchestra sandbox env)"`) or unset LORCHESTRA_SANDBOX_URL to use the vendor; '
        "`lorchestra doctor` checks every source"
    )


@pytest.mark.parametrize("connector", ["dataverse", "gmail", "stripe"])
def test_slow_page_times_out_and_is_retried(sandbox, tmp_path, connector):
    stream, path = BY_CONNECTOR[connector]
    catalog = write_catalog(tmp_path / "c", timeout_s=0.3)
    sandbox.faults.add("slow", count=1, path_contains=path, delay_s=1.0)
    out = run_injest(catalog, stream, env_for(sandbox))
    assert len(out["items"]) == len(sandbox.practice.streams[stream])


def test_dataverse_keeps_formatted_value_annotations(sandbox, catalog):
    out = run_injest(catalog, "dataverse_contacts", env_for(sandbox))
    row = out["items"][0]
    assert row["cr_clienttype@OData.Community.Display.V1.FormattedValue"] in (
        "Individual",
        "Couple",
        "Family",
        "Assessment only",
    )


def test_dataverse_static_bearer_token(sandbox, tmp_path):
    import httpx
    import yaml

    catalog = write_catalog(tmp_path / "c")
    doc = yaml.safe_load((catalog / "sources.yaml").read_text())
    stream = doc["streams"]["dataverse_reports"]
    for key in ("tenant_id", "client_id", "client_secret_env"):
        stream.pop(key)
    stream["token_env"] = "DV_TOKEN"
    (catalog / "sources.yaml").write_text(yaml.safe_dump(doc))
    token = httpx.post(
        f"{sandbox.url}/t/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "c",
            "client_secret": "sandbox-client-secret",
            "scope": "x/.default",
        },
    ).json()["access_token"]
    out = run_injest(catalog, "dataverse_reports", env_for(sandbox, DV_TOKEN=token))
    assert len(out["items"]) == len(sandbox.practice.streams["dataverse_reports"])


def test_gmail_token_from_an_authorized_user_file(sandbox, tmp_path):
    import json

    import yaml

    catalog = write_catalog(tmp_path / "c")
    doc = yaml.safe_load((catalog / "sources.yaml").read_text())
    stream = doc["streams"]["gmail_acct2"]
    stream.pop("token_env")
    stream["token_file_env"] = "GMAIL_ACCT2_TOKEN_FILE"
    (catalog / "sources.yaml").write_text(yaml.safe_dump(doc))
    token_file = tmp_path / "token.json"
    token_file.write_text(
        json.dumps(
            {
                "token": "sandbox-gmail-acct2",
                "refresh_token": "unused",
                "client_id": "c",
                "client_secret": "unused",
                "token_uri": f"{sandbox.url}/unused",
                "expiry": "2099-01-01T00:00:00Z",
            }
        )
    )
    env = env_for(sandbox, GMAIL_ACCT2_TOKEN_FILE=str(token_file))
    out = run_injest(catalog, "gmail_acct2", env)
    assert len(out["items"]) == len(sandbox.practice.streams["gmail_acct2"])
    env["GMAIL_ACCT2_TOKEN_FILE"] = str(tmp_path / "missing.json")
    with pytest.raises(PermanentError, match="GMAIL_ACCT2_TOKEN_FILE"):
        run_injest(catalog, "gmail_acct2", env)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_gmail_gets_a_page_concurrently_bounded_per_account(sandbox, tmp_path, concurrency):
    import yaml

    catalog = write_catalog(tmp_path / "c")
    doc = yaml.safe_load((catalog / "sources.yaml").read_text())
    doc["streams"]["gmail_acct1"].update(page_size=6, fetch_concurrency=concurrency)
    (catalog / "sources.yaml").write_text(yaml.safe_dump(doc))
    sandbox.state.latency_s = 0.02  # requests overlap only when they are sent together
    out = run_injest(catalog, "gmail_acct1", env_for(sandbox))
    newest_first = [row[1] for row in sandbox.state.sorted_stream("gmail_acct1", "gmail")][::-1]
    # Same messages in Gmail's order (newest first, page by page), never more in flight.
    assert [m["id"] for m in out["items"]] == newest_first
    assert sandbox.state.max_in_flight <= concurrency
    if concurrency > 1:
        assert sandbox.state.max_in_flight > 1


@pytest.mark.parametrize("connector", sorted(BY_CONNECTOR))
def test_every_page_of_a_fetch_reuses_one_keep_alive_connection(sandbox, tmp_path, connector):
    """A connection per fetch (per worker thread for Gmail's gets), never one per request:
    the sandbox sees each TCP connection as one client port."""
    import yaml

    stream, _ = BY_CONNECTOR[connector]
    catalog = write_catalog(tmp_path / "c", page_size=2)
    doc = yaml.safe_load((catalog / "sources.yaml").read_text())
    doc["streams"]["gmail_acct1"]["fetch_concurrency"] = 2
    (catalog / "sources.yaml").write_text(yaml.safe_dump(doc))
    out = run_injest(catalog, stream, env_for(sandbox))
    assert len(out["items"]) == len(sandbox.practice.streams[stream])
    # Gmail: the list's connection and one per get worker; every other connector: one.
    allowed = 1 + 2 if connector == "gmail" else 1
    assert sandbox.state.requests > 2 * allowed  # many pages (page_size 2): reuse is real
    assert len(sandbox.state.peers) <= allowed
