"""Lineage from data agrees with the pipelines; bad lineage fails with the path printed."""

from __future__ import annotations

import pytest
from dagster_helpers import JOBS

from lorchestra_dagster.errors import SpecError
from lorchestra_dagster.naming import STAGES
from lorchestra_dagster.spec import JobDef
from lorchestra_dagster.spec.catalog import load_catalog
from lorchestra_dagster.spec.lineage import (
    infer_lineage,
    job_io,
    lineage_from_jobs,
    validate_lineage,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def shipped():
    """The shipped catalog's lineage as inferred, *not* validated: the tests below check
    its properties themselves (validation would raise before any of them could fail)."""
    cat = load_catalog(JOBS)
    jobs = [j for j in cat.jobs.values() if j.stage in STAGES]
    return cat, infer_lineage(job_io(j.job_id, j.stage, j.jobdef, str(j.path)) for j in jobs)


def test_shipped_lineage_validates(shipped) -> None:
    _, lineage = shipped
    validate_lineage(lineage)


def test_no_asset_depends_on_a_later_stage(shipped) -> None:
    _, lineage = shipped
    later = [
        f"{jid} -> {up}"
        for jid, ups in lineage.deps.items()
        for up in ups
        if STAGES.index(lineage.jobs[up].stage) > STAGES.index(lineage.jobs[jid].stage)
    ]
    assert not later


def test_every_canonize_job_has_its_ingest_upstream(shipped) -> None:
    _, lineage = shipped
    canonize = [j for j in lineage.jobs.values() if j.stage == "canonize"]
    assert canonize
    for job in canonize:
        ingest_ups = [u for u in lineage.deps[job.job_id] if lineage.jobs[u].stage == "ingest"]
        assert ingest_ups, f"{job.job_id} has no ingest upstream"
    # Filters tell streams apart: the gmail canonize job does not wait for Stripe.
    gmail = lineage.deps["canonize_gmail_email"]
    assert set(gmail) == {"ingest_gmail_acct1", "ingest_gmail_acct2"}


def test_formation_and_project_lineage(shipped) -> None:
    cat, lineage = shipped
    formation = [j for j in lineage.jobs.values() if j.stage == "formation"]
    if not formation:
        pytest.fail("the shipped catalog has no formation job")
    for job in formation:
        assert "canonize_google_forms_response" in lineage.upstream(job.job_id)
    project = [j for j in lineage.jobs.values() if j.stage == "project"]
    assert project
    for job in project:
        stages = {lineage.jobs[u].stage for u in lineage.upstream(job.job_id)}
        assert "views" in stages, job.job_id
    measures = lineage.upstream("sync_measurements")
    assert any(lineage.jobs[u].stage == "formation" for u in measures)


def test_lineage_agrees_with_the_pipeline_order(shipped) -> None:
    cat, lineage = shipped
    daily = cat.pipelines["pipeline.daily_all"]
    order = [s.name for s in daily.stages]
    for jid, ups in lineage.deps.items():
        for up in ups:
            assert order.index(lineage.jobs[up].stage) <= order.index(lineage.jobs[jid].stage)


def _job(job_id: str, steps: list[dict], **extra) -> JobDef:
    return JobDef.model_validate({"job_id": job_id, "version": "2.0", "steps": steps, **extra})


def _reader(job_id: str, dataset: str, table: str, filters: dict | None = None, **kw) -> JobDef:
    return _job(
        job_id,
        [
            {
                "step_id": "read",
                "op": "storacle.query",
                "params": {"dataset": dataset, "table": table, "filters": filters or {}},
            },
            *kw.pop("more", []),
        ],
        **kw,
    )


def _writer_step(dataset: str, table: str, defaults: dict | None = None) -> dict:
    return {
        "step_id": "build",
        "op": "plan.build",
        "params": {
            "items": "@run.read.items",
            "method": "bq.upsert",
            "dataset": dataset,
            "table": table,
            "key_columns": ["idem_key"],
            "field_defaults": defaults or {},
        },
    }


def test_cycle_is_reported_with_its_path() -> None:
    a = _reader("job_a", "raw", "t_b", more=[_writer_step("raw", "t_a")])
    b = _reader("job_b", "raw", "t_a", more=[_writer_step("raw", "t_b")])
    with pytest.raises(SpecError) as err:
        lineage_from_jobs([("job_a", "canonize", a, "a.yaml"), ("job_b", "canonize", b, "b.yaml")])
    text = str(err.value)
    assert "dependency cycle" in text
    assert "canonize/job_a -> canonize/job_b -> canonize/job_a" in text


def test_later_stage_dependency_fails() -> None:
    early = _reader("early", "canonical", "proj_x", more=[_writer_step("raw", "raw_objects")])
    late = _reader("late", "raw", "raw_objects", more=[_writer_step("canonical", "proj_x")])
    with pytest.raises(SpecError, match=r"ingest/early -> views/late: depends on a later stage"):
        lineage_from_jobs([("early", "ingest", early, None), ("late", "views", late, None)])


def test_ambiguous_read_fails_unless_deps_names_it() -> None:
    w1 = _reader("w1", "src", "a", more=[_writer_step("shared", "t", {"source_system": "x"})])
    w2 = _reader("w2", "src", "b", more=[_writer_step("shared", "t", {"source_system": "x"})])
    reader = _reader("r", "shared", "t", {"source_system": "x"})
    jobs = [("w1", "ingest", w1, None), ("w2", "canonize", w2, None), ("r", "views", reader, None)]
    with pytest.raises(SpecError, match="ambiguous read of shared.t"):
        lineage_from_jobs(jobs)
    explicit = _reader("r", "shared", "t", {"source_system": "x"}, deps=["canonize/w2"])
    lineage = lineage_from_jobs([*jobs[:2], ("r", "views", explicit, None)])
    assert "w2" in lineage.deps["r"]


def test_filters_separate_slices_and_own_output_is_no_dependency() -> None:
    gmail = _reader(
        "ig", "x", "y", more=[_writer_step("raw", "raw_objects", {"source_system": "g"})]
    )
    stripe = _reader(
        "is", "x", "z", more=[_writer_step("raw", "raw_objects", {"source_system": "s"})]
    )
    canon = _reader("cg", "raw", "raw_objects", {"source_system": "g"})
    lineage = infer_lineage(
        [
            job_io("ig", "ingest", gmail),
            job_io("is", "ingest", stripe),
            job_io("cg", "canonize", canon),
        ]
    )
    assert lineage.deps["cg"] == ["ig"]
    assert "reads raw.raw_objects[source_system=g]" in lineage.reasons[("cg", "ig")]


def test_a_view_reads_the_slice_its_cte_filters() -> None:
    """A table read inside a CTE carries that CTE's constants (``canonical_format``): the
    view depends on the contact writer only, not on every writer of the shared table."""
    sql = """
        CREATE OR REPLACE VIEW canonical.proj_x AS
        WITH contacts AS (
          SELECT idem_key, JSON_VALUE(payload, '$.contact_id') AS client_id
          FROM canonical.canonical_objects
          WHERE canonical_format = 'contact'
        )
        SELECT * FROM contacts WHERE client_id IS NOT NULL
    """
    view = _job(
        "v",
        [
            {
                "step_id": "persist",
                "op": "plan.build",
                "params": {"method": "bq.execute", "items": [{"sql": sql}]},
            }
        ],
    )
    writers = [
        (fmt, _reader(fmt, "raw", fmt, more=[_writer_step("canonical", "canonical_objects", {
            "canonical_format": fmt
        })]))
        for fmt in ("contact", "clinical_session")
    ]  # fmt: skip
    lineage = infer_lineage(
        [*(job_io(j, "canonize", d) for j, d in writers), job_io("v", "views", view)]
    )
    assert lineage.deps["v"] == ["contact"]
    assert "canonical_format=contact" in lineage.reasons[("v", "contact")]
