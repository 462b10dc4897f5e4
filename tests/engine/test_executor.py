"""The executor end to end on a temp catalog and a temp DuckDB warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest
from kit import INGEST_STAMPS, raw_seed_job, write_catalog

from lorchestra_dagster.callables import register, result
from lorchestra_dagster.engine import Services, execute_with
from lorchestra_dagster.errors import PermanentError, TransientError
from lorchestra_dagster.settings import Settings

pytestmark = pytest.mark.e2e

_FLAKY = {"left": 0}


@register("test_copy_payload")
def _copy_payload(params, ctx):
    """Echo raw rows as canonical rows (the shape the canonizer produces)."""
    items = [
        {
            k: row[k]
            for k in (
                "idem_key",
                "source_system",
                "connection_name",
                "object_type",
                "correlation_id",
            )
        }
        | {"payload": {"n": row["payload"]["n"]}}
        for row in params.get("items") or []
    ]
    return result(items, input=len(params.get("items") or []))


_FRAGILE = {"fail_on": None}


@register("test_fragile_copy")
def _fragile_copy(params, ctx):
    """Like test_copy_payload, but fails permanently on one chosen item."""
    for row in params.get("items") or []:
        if row["payload"]["n"] == _FRAGILE["fail_on"]:
            raise PermanentError(f"cannot transform {row['idem_key']}")
    return _copy_payload(params, ctx)


_FAN_PAGES: list[int] = []


@register("test_fan_out")
def _fan_out(params, ctx):
    """Ten canonical rows per raw row (as one form response scores into many observations)."""
    rows = _copy_payload(params, ctx)["items"]
    _FAN_PAGES.append(len(rows))
    items = [{**r, "idem_key": f"{r['idem_key']}-{j}"} for r in rows for j in range(10)]
    return result(items, input=len(rows))


@register("test_flaky")
def _flaky(params, ctx):
    if _FLAKY["left"] > 0:
        _FLAKY["left"] -= 1
        raise TransientError("sandbox busy")
    return result([], input=0)


@register("test_broken")
def _broken(params, ctx):
    raise PermanentError("credential GMAIL_TOKEN rejected")


SEED = raw_seed_job("seed", **INGEST_STAMPS)

COPY = """
job_id: copy
version: '2.0'
steps:
- step_id: read
  op: storacle.query
  params:
    dataset: raw
    table: raw_objects
    columns: [idem_key, source_system, connection_name, object_type, payload, correlation_id]
    filters: {source_system: demo}
    parse_json_columns: [payload]
    incremental:
      mode: not_exists
      target_dataset: canonical
      target_table: canonical_objects
      source_key: idem_key
      target_key: idem_key
      join_key_suffix: thing_v1
- step_id: canon
  op: call
  params:
    callable: test_copy_payload
    items: '@run.read.items'
- step_id: persist
  op: plan.build
  params:
    items: '@run.canon.items'
    method: bq.upsert
    dataset: canonical
    table: canonical_objects
    key_columns: [idem_key]
    idem_key_suffix: thing_v1
    field_defaults: {canonical_schema: 'iglu:org.test/thing/jsonschema/1-0-0',
                     canonical_format: thing, transform_ref: test@1}
    auto_timestamp_columns: [canonicalized_at, created_at]
    skip_update_columns: [created_at]
- step_id: write
  op: storacle.submit
  params:
    plan: '@run.persist.plan'
"""

FLAKY = """
job_id: flaky
version: '2.0'
steps:
- step_id: call
  op: call
  retry: {attempts: 3, backoff_s: 0.01}
  params: {callable: test_flaky}
"""

BROKEN = """
job_id: broken
version: '2.0'
steps:
- step_id: call
  op: call
  retry: {attempts: 3, backoff_s: 0.01}
  params: {callable: test_broken}
"""

PIPE = """
pipeline_id: pipeline.test
stages:
- name: ingest
  jobs: [seed]
- name: canonize
  jobs: [copy]
stop_on_failure: true
"""

PIPE_FAIL = """
pipeline_id: pipeline.fails
stages:
- name: first
  jobs: [broken, flaky]
- name: second
  jobs: [copy]
stop_on_failure: true
"""


FRAGILE = COPY.replace("job_id: copy", "job_id: copy_fragile").replace(
    "callable: test_copy_payload", "callable: test_fragile_copy"
)


FAN = COPY.replace("job_id: copy", "job_id: fan").replace(
    "callable: test_copy_payload", "callable: test_fan_out"
)


def _catalog(root: Path) -> Path:
    return write_catalog(
        root,
        {
            "canonize/copy_fragile.yaml": FRAGILE,
            "ingest/seed.yaml": SEED,
            "canonize/copy.yaml": COPY,
            "canonize/fan.yaml": FAN,
            "misc/flaky.yaml": FLAKY,
            "misc/broken.yaml": BROKEN,
            "pipelines/pipeline.test.yaml": PIPE,
            "pipelines/pipeline.fails.yaml": PIPE_FAIL,
        },
    )


@pytest.fixture
def services(tmp_path, _isolated_home):
    settings = Settings.from_env(jobs_dir=_catalog(tmp_path / "jobs"), home=_isolated_home)
    svc = Services.from_settings(settings)
    yield svc
    svc.client.close()


def _items(n, start=0):
    return [{"id": f"t{i:03d}", "n": i} for i in range(start, start + n)]


def _snapshot(svc, table):
    return svc.client.sql(f"SELECT * FROM {table} ORDER BY idem_key")


def test_ingest_then_incremental_canonize_and_idempotent_rerun(services):
    seeded = execute_with({"job_id": "seed", "payload": {"items": _items(7)}}, services)
    assert seeded.status == "succeeded", seeded.error
    assert seeded.rows_written == 7
    copied = execute_with({"job_id": "copy", "batch_size": 3}, services)
    assert copied.status == "succeeded", copied.error
    assert (copied.rows_read, copied.rows_written) == (7, 7)
    read = next(s for s in copied.steps if s.step_id == "read")
    assert read.attempts == 3  # three pages of at most 3 rows: 3 + 3 + 1
    keys = [r["idem_key"] for r in _snapshot(services, "canonical.canonical_objects")]
    assert keys[0] == "demo:demo-main:thing:t000#thing_v1" and len(keys) == 7

    raw_before = _snapshot(services, "raw.raw_objects")
    canon_before = _snapshot(services, "canonical.canonical_objects")
    again = execute_with({"job_id": "seed", "payload": {"items": _items(7)}}, services)
    assert again.rows_written == 0
    recopied = execute_with({"job_id": "copy"}, services)
    assert (recopied.rows_read, recopied.rows_written) == (0, 0)
    assert _snapshot(services, "raw.raw_objects") == raw_before
    assert _snapshot(services, "canonical.canonical_objects") == canon_before

    more = execute_with({"job_id": "seed", "payload": {"items": _items(2, start=7)}}, services)
    assert more.rows_written == 2
    delta = execute_with({"job_id": "copy"}, services)
    assert (delta.rows_read, delta.rows_written) == (2, 2)


def test_changed_source_row_updates_but_keeps_first_seen(services):
    execute_with({"job_id": "seed", "payload": {"items": _items(1)}}, services)
    before = _snapshot(services, "raw.raw_objects")[0]
    changed = execute_with(
        {"job_id": "seed", "payload": {"items": [{"id": "t000", "n": 99}]}}, services
    )
    assert changed.rows_written == 1
    after = _snapshot(services, "raw.raw_objects")[0]
    assert after["first_seen"] == before["first_seen"]
    assert after["payload"] != before["payload"]


def test_dry_run_writes_nothing_anywhere(services):
    res = execute_with(
        {"job_id": "seed", "payload": {"items": _items(3)}, "dry_run": True}, services
    )
    assert res.status == "succeeded" and res.dry_run
    assert res.rows_written == 0
    assert res.plans and res.plans[0]["ops"][0]["rows"] == 3
    assert services.client.query({"dataset": "raw", "table": "raw_objects"}) == []


def test_run_records_are_dagster_history_with_steps_and_no_payloads(services):
    from lorchestra_dagster.launch import launch, open_instance, show_run

    res = launch("seed", kind="job", settings=services.settings, payload={"items": _items(2)})
    assert res.status == "succeeded" and res.launched_by == "cli"
    [job] = res.jobs
    assert job.rows_written == 2 and {s.step_id for s in job.steps} == {"persist", "write"}
    assert show_run(res.run_id[:8], services.settings).jobs[0].rows_written == 2
    with open_instance(services.settings) as instance:
        events = instance.all_logs(res.run_id)
    dumped = str([e.dagster_event for e in events])
    assert "t001" not in dumped  # item ids never reach Dagster's storage: counts only
    assert "ASSET_MATERIALIZATION" in dumped


def test_transient_errors_are_retried(services):
    _FLAKY["left"] = 2
    res = execute_with({"job_id": "flaky"}, services)
    assert res.status == "succeeded"
    assert res.steps[0].attempts == 3


def test_permanent_errors_fail_at_once_with_root_cause(services):
    res = execute_with({"job_id": "broken"}, services)
    assert res.status == "failed"
    assert res.steps[0].attempts == 1
    assert res.error["message"] == "credential GMAIL_TOKEN rejected"
    assert res.error["step_id"] == "call"


def test_unknown_job_is_a_clear_failure(services):
    res = execute_with({"job_id": "nope"}, services)
    assert res.status == "failed" and "nope" in res.error["message"]


def test_missing_payload_reference_is_a_compile_error(services):
    res = execute_with({"job_id": "seed"}, services)
    assert res.status == "failed"
    assert "payload" in res.error["message"] and "items" in res.error["message"]


def test_pipeline_runs_stages_as_one_dagster_run(services):
    from lorchestra_dagster.launch import launch, list_runs

    # seed reads its items from the payload, so the pipeline passes one down.
    res = launch(
        "pipeline.test", kind="pipeline", settings=services.settings, payload={"items": _items(4)}
    )
    assert res.status == "succeeded", res.failures
    assert res.succeeded == ["seed", "copy"]
    assert res.rows_written == 8
    [listed] = [r for r in list_runs(services.settings) if r["run_id"] == res.run_id]
    assert listed["pipeline_id"] == "pipeline.test" and listed["launched_by"] == "cli"


def test_pipeline_stop_on_failure_keeps_root_cause(services):
    from lorchestra_dagster.launch import launch

    _FLAKY["left"] = 0
    res = launch("pipeline.fails", kind="pipeline", settings=services.settings)
    assert res.status == "failed"
    assert res.failed == ["broken"] and res.succeeded == ["flaky"]
    assert res.skipped == ["copy"]
    assert res.failures[0]["error"]["message"] == "credential GMAIL_TOKEN rejected"
    copy = next(j for j in res.jobs if j.job_id == "copy")
    assert copy.reason == "an earlier stage failed"


def test_job_whose_yaml_is_invalid_names_the_file_and_line(services):
    bad = services.catalog_dir / "misc" / "typo.yaml"
    bad.write_text(
        "job_id: typo\nversion: '2.0'\nsteps:\n- step_id: a\n  op: storacle.qurey\n  params: {}\n"
    )
    fresh = Services.from_settings(services.settings)
    res = execute_with({"job_id": "typo"}, fresh)
    assert res.status == "failed"
    assert "failed validation" in res.error["message"]
    assert res.error["file"].endswith("typo.yaml") and res.error["line"] == 5
    fresh.client.close()


def test_failed_batch_keeps_earlier_batches_and_rerun_resumes(services):
    execute_with({"job_id": "seed", "payload": {"items": _items(7)}}, services)
    _FRAGILE["fail_on"] = 4  # the second page of three rows holds n=3,4,5
    failed = execute_with({"job_id": "copy_fragile", "batch_size": 3}, services)
    assert failed.status == "failed" and "t004" in failed.error["message"]
    assert failed.rows_written == 3
    assert len(_snapshot(services, "canonical.canonical_objects")) == 3
    _FRAGILE["fail_on"] = None
    resumed = execute_with({"job_id": "copy_fragile", "batch_size": 3}, services)
    assert resumed.status == "succeeded"
    assert (resumed.rows_read, resumed.rows_written) == (4, 4)
    keys = [r["idem_key"] for r in _snapshot(services, "canonical.canonical_objects")]
    assert len(keys) == len(set(keys)) == 7


def test_a_page_that_fans_out_makes_the_next_pages_smaller(services):
    """No step of a page handles much more than ``batch_size`` rows: a page whose call made
    ten rows of each row read cuts the next pages in that ratio."""
    execute_with({"job_id": "seed", "payload": {"items": _items(30)}}, services)
    _FAN_PAGES.clear()
    res = execute_with({"job_id": "fan", "batch_size": 20}, services)
    assert res.status == "succeeded", res.error
    assert res.rows_written == 300
    # 20 rows made 200 for plan.build; the rest come 2 at a time (20 rows each)
    assert _FAN_PAGES == [20, 2, 2, 2, 2, 2]


def test_keyset_pages_are_sized_by_bytes_not_only_rows() -> None:
    from lorchestra_dagster.engine.executor import PAGE_BYTES, _next_page_rows

    small = [{"k": i} for i in range(10)]
    assert _next_page_rows(small, 5000) == 5000  # small rows: the row cap
    big = [{"k": i, "doc": "x" * 100_000} for i in range(10)]
    rows = _next_page_rows(big, 5000)
    assert 30 <= rows <= 50 and rows * 100_000 <= PAGE_BYTES
    # a step of the last page (10 rows read) made 4 rows of each: a quarter of the cap
    assert _next_page_rows(small, 5000, widest=40) == 1250
    assert _next_page_rows(small, 5000, widest=10) == 5000  # one row out per row in


_PAGES: list[tuple[list[str], list[str]]] = []


@register("test_record_page")
def _record_page(params, ctx):
    """Record which anchor keys and which ranged rows one page saw."""
    _PAGES.append(
        (
            [c["client_id"] for c in params.get("clients") or []],
            sorted(r["row_id"] for r in params.get("rows") or []),
        )
    )
    return result([], input=len(params.get("rows") or []))


PAGED_JOIN = """
job_id: paged_join
version: '2.0'
steps:
- step_id: clients
  op: storacle.query
  params: {dataset: derived, table: t_clients, columns: ['*'], batch_key: client_id,
           batch_rows: ROWS}
- step_id: rows
  op: storacle.query
  params: {dataset: derived, table: t_rows, columns: ['*'], keyset: '@run.clients.keyset'}
- step_id: pair
  op: call
  params: {callable: test_record_page, clients: '@run.clients.items', rows: '@run.rows.items'}
"""


@pytest.mark.parametrize(
    ("rows", "pages"),
    [
        # Two full pages, then an empty one that still reads the rows past the last client;
        # rows of no client (r0 before c1, r25 between c2 and c3, rn with a null key) are
        # read once: in their range, the null one with the first page.
        (
            2,
            [(["c1", "c2"], ["r0", "r1", "r2", "rn"]), (["c3", "c4"], ["r25", "r4"]), ([], ["r5"])],
        ),
        (3, [(["c1", "c2", "c3"], ["r0", "r1", "r2", "r25", "rn"]), (["c4"], ["r4", "r5"])]),
        (10, [(["c1", "c2", "c3", "c4"], ["r0", "r1", "r2", "r25", "r4", "r5", "rn"])]),
    ],
)
def test_reads_take_the_anchor_page_key_range(services, rows, pages):
    from lorchestra_dagster.storacle.plan import make_plan

    owners = {"r0": "c0", "r1": "c1", "r2": "c2", "r25": "c25", "r4": "c4", "r5": "c5", "rn": None}
    services.client.execute_plan(
        make_plan(
            [
                (
                    "bq.upsert",
                    {
                        "dataset": "derived",
                        "table": "t_clients",
                        "key_columns": ["client_id"],
                        "rows": [{"client_id": f"c{i}"} for i in (4, 2, 1, 3)],
                    },
                ),
                (
                    "bq.upsert",
                    {
                        "dataset": "derived",
                        "table": "t_rows",
                        "key_columns": ["row_id"],
                        "rows": [{"row_id": r, "client_id": c} for r, c in owners.items()],
                    },
                ),
            ],
            {"job_id": "seed_pages"},
        )
    )
    job = PAGED_JOIN.replace("ROWS", str(rows))
    (services.settings.jobs_dir / "misc" / "paged_join.yaml").write_text(job)
    fresh = Services.from_settings(services.settings)
    _PAGES.clear()
    res = execute_with({"job_id": "paged_join"}, fresh)
    assert res.status == "succeeded", res.error
    assert _PAGES == pages
    assert res.rows_read == 4 + len(owners)
    fresh.client.close()
