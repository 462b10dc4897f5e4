"""Every canonize job's read hands the canonizer its payloads as JSON text.

Why it matters: a parsed payload is a graph of live containers (a form response is
about 140 dicts and lists). A read that parses a whole page holds every graph until the
canonizer is done with the page, and the collector walks them on every full collection
the page's own allocations trigger: at 873 clients the forms read took 0.9 s where 263
responses took 0.04 s. As text a payload is one string the collector never visits; the
canonizer parses it when it transforms that row, and the graph is gone with the row.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kit import JOBS as CATALOG

from lorchestra_dagster.callables import CallContext, get_callable
from lorchestra_dagster.callables.canonizer import ROW_SOURCE_TYPES
from lorchestra_dagster.callables.transforms import load_transform
from lorchestra_dagster.engine import Services
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.spec.catalog import load_catalog
from lorchestra_dagster.spec.compile import compile_job
from lorchestra_dagster.storacle.plan import make_plan

pytestmark = pytest.mark.e2e

CATALOG_JOBS = load_catalog(CATALOG).jobs


def _canonize_reads() -> list[tuple[str, str, str]]:
    """(job, read step, canonize step) of every job that canonizes vendor payloads."""
    out = []
    for job_id, loaded in sorted(CATALOG_JOBS.items()):
        for step in loaded.jobdef.steps:
            params = step.params_dict()
            if params.get("callable") != "canonizer":
                continue
            if params.get("source_type") in ROW_SOURCE_TYPES:
                continue  # derived rows: the transform reads the whole row, not a payload
            out.append((job_id, str(params["items"]).split(".")[1], step.step_id))
    return out


CANONIZE_READS = _canonize_reads()


def _steps(job_id: str) -> dict[str, dict[str, Any]]:
    return {s.step_id: s.params_dict() for s in CATALOG_JOBS[job_id].jobdef.steps}


def _raw_rows(job_id: str, read_id: str, canonize_id: str) -> list[dict[str, Any]]:
    """Raw rows the job's read selects: its transform's golden inputs under its filters."""
    steps = _steps(job_id)
    filters = steps[read_id]["filters"]
    transform_id = steps[canonize_id]["config"]["transform_id"]
    transform = load_transform(CATALOG, transform_id)
    kind = f"{filters['source_system']}:main:{filters['object_type']}"
    rows = []
    for n, test in enumerate(transform.meta.tests):
        rows.append(
            {
                "idem_key": f"{kind}:{job_id}-{n}",
                "connection_name": "main",
                **filters,
                "external_id": f"{job_id}-{n}",
                "payload": json.loads((transform.folder / test.input).read_text()),
                "first_seen": "2026-11-28T06:00:00+00:00",
                "last_seen": "2026-11-28T06:00:00+00:00",
                "correlation_id": "seed",
            }
        )
    return rows


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory):
    """A warehouse whose raw objects are the golden inputs of every canonize transform."""
    home = tmp_path_factory.mktemp("home")
    svc = Services.from_settings(Settings.from_env(jobs_dir=CATALOG, home=home), env={})
    rows = {r["idem_key"]: r for job in CANONIZE_READS for r in _raw_rows(*job)}
    op = {"dataset": "raw", "table": "raw_objects", "key_columns": ["idem_key"]}
    plan = make_plan([("bq.upsert", {**op, "rows": list(rows.values())})], {"run_id": "seed"})
    svc.client.execute_plan(plan.model_dump())
    yield svc
    svc.client.close()


def test_the_catalog_has_canonize_jobs() -> None:
    assert len(CANONIZE_READS) >= 10, CANONIZE_READS


@pytest.mark.parametrize(("job_id", "read_id", "canonize_id"), CANONIZE_READS)
def test_read_gives_payload_text_and_canonizing_it_is_unchanged(
    services: Any, job_id: str, read_id: str, canonize_id: str
) -> None:
    instance = compile_job(load_catalog(CATALOG).job(job_id), {"job_id": job_id})
    read = instance.step(read_id).params
    rows = services.client.query(read)
    # Jobs reading the same object type (four of Dataverse's sessions) see each other's rows.
    same = [j for j in CANONIZE_READS if _steps(j[0])[j[1]]["filters"] == read["filters"]]
    assert len(rows) == sum(len(_raw_rows(*j)) for j in same) > 0, job_id
    kinds = {type(r["payload"]).__name__ for r in rows}
    assert kinds == {"str"}, f"{job_id}: payloads read as {kinds}, not JSON text"

    params = {k: v for k, v in instance.step(canonize_id).params.items() if k != "items"}
    canonize = get_callable("canonizer")
    ctx = CallContext(catalog_dir=CATALOG, home=services.settings.home, env={})
    from_text = canonize({**params, "items": rows}, ctx)
    parsed = [{**r, "payload": json.loads(r["payload"])} for r in rows]
    from_objects = canonize({**params, "items": parsed}, ctx)
    assert from_text["stats"]["errors"] == 0
    assert from_text["items"] == from_objects["items"]
