"""The shared test kit: repository paths, free ports, catalogs, homes, emulators and
backend inputs, once.

Test folders have no ``__init__``; ``tests/`` is on ``sys.path`` (its conftest
sits there), so any test imports ``from kit import REPO, JOBS, free_port``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from lorchestra_dagster.ports import free_port
from lorchestra_dagster.storacle.backends.base import Op
from lorchestra_dagster.storacle.query import QueryParams

#: The repository checkout the tests run from.
REPO = Path(__file__).resolve().parents[2]
#: The shipped catalog.
JOBS = REPO / "jobs"


def upsert_job(
    job_id: str,
    dataset: str,
    table: str,
    items: str = "@payload.rows",
    key: str = "idem_key",
    **shaping: Any,
) -> str:
    """YAML of the smallest writing job: ``items`` upserted into ``dataset.table`` by ``key``.

    Tests seed the warehouse through a real job (plan.build, then storacle.submit) rather
    than behind the engine's back, so what they read was written the way jobs write.
    ``shaping`` adds plan.build params (``payload_wrap=True``, ``field_defaults={...}``),
    written as YAML flow values.
    """
    more = "".join(f"    {name}: {json.dumps(value)}\n" for name, value in shaping.items())
    return (
        f"job_id: {job_id}\nversion: '2.0'\nsteps:\n"
        "- step_id: persist\n  op: plan.build\n  params:\n"
        f"    method: bq.upsert\n    dataset: {dataset}\n    table: {table}\n"
        f"    key_columns: [{key}]\n{more}    items: '{items}'\n"
        "- step_id: write\n  op: storacle.submit\n  params: {plan: '@run.persist.plan'}\n"
    )


#: The source of ``raw_seed_job``'s rows (what its readers filter on).
DEMO_SOURCE = {"source_system": "demo", "connection_name": "demo-main", "object_type": "thing"}


#: ``raw_seed_job`` shaping as the shipped ingest jobs have it: ``external_id`` from the
#: id, ``first_seen``/``last_seen`` stamped, ``first_seen`` kept on update.
INGEST_STAMPS: dict[str, Any] = {
    "auto_external_id": True,
    "auto_timestamp_columns": ["first_seen", "last_seen"],
    "skip_update_columns": ["first_seen"],
}


def raw_seed_job(job_id: str, **shaping: Any) -> str:
    """An ingest-shaped job: ``@payload.items`` (objects with an ``id``) upserted into
    ``raw.raw_objects`` as ``DEMO_SOURCE``, each wrapped as ``payload``, keyed by ``id``."""
    return upsert_job(
        job_id,
        "raw",
        "raw_objects",
        "@payload.items",
        payload_wrap=True,
        id_field="id",
        field_defaults=DEMO_SOURCE,
        **shaping,
    )


def write_catalog(root: Path, files: Mapping[str, str]) -> Path:
    """Write ``{relative path: text}`` under ``root`` (text dedented) and return ``root``.

    A tiny catalog of a test's own jobs, pipelines and extras, never the shipped ``jobs/``.
    """
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def write_schema(root: Path, uri: str, schema: Mapping[str, Any]) -> Path:
    """The JSON Schema of ``uri`` (``iglu:vendor/name/jsonschema/x-y-z``) in the catalog."""
    from lorchestra_dagster.callables.transforms import schema_path

    path = schema_path(root, uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(schema)), encoding="utf-8")
    return path


def write_transform(
    root: Path,
    transform_id: str,
    expr: str,
    schemas: Mapping[str, Mapping[str, Any]],
    *,
    checksum: str | None = None,
    meta: str = "",
) -> Path:
    """A jsonata transform ``<domain>/<name>@<version>`` with its checksum and schemas.

    ``schemas`` maps the ``from_schema`` then the ``to_schema`` URI to its JSON Schema
    (one entry when both are the same); ``meta`` is more ``spec.meta.yaml`` text
    (``runtime``, ``tests``, ``config_schema``); ``checksum`` overrides the true one.
    Returns the transform's folder.
    """
    name, version = transform_id.split("@")
    uris = list(schemas)
    folder = root / "transforms" / name / version
    folder.mkdir(parents=True)
    (folder / "spec.jsonata").write_text(expr, encoding="utf-8")
    digest = checksum or hashlib.sha256(expr.encode()).hexdigest()
    (folder / "spec.meta.yaml").write_text(
        f"id: {name}\nversion: {version}\nengine: jsonata\n"
        f"from_schema: {uris[0]}\nto_schema: {uris[-1]}\n"
        f"checksum: {{jsonata_sha256: '{digest}'}}\n" + textwrap.dedent(meta),
        encoding="utf-8",
    )
    for uri, schema in schemas.items():
        write_schema(root, uri, schema)
    return folder


def dagster_home(home: Path) -> Path:
    """``<home>/dagster`` holding the repository's ``dagster.yaml``: a run's instance."""
    folder = home / "dagster"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", folder / "dagster.yaml")
    return folder


def use_catalog(monkeypatch: pytest.MonkeyPatch, catalog: Path, home: Path) -> Path:
    """Export ``catalog`` and a Dagster instance under ``home`` as the runs' environment.

    Returns the Dagster home. DuckDB's short lock lets an in-test reader open the
    warehouse between runs.
    """
    folder = dagster_home(home)
    monkeypatch.setenv("LORCHESTRA_JOBS_DIR", str(catalog))
    monkeypatch.setenv("DAGSTER_HOME", str(folder))
    monkeypatch.setenv("LORCHESTRA_DUCKDB_SHORT_LOCK", "1")
    return folder


def plan_ops(*ops: Mapping[str, Any]) -> list[Op]:
    """``{id?, method, params}`` ops as the service hands them to a backend: each op's
    params validated into its method's model, for tests that call a backend directly."""
    return [Op.parse(op.get("id", "op"), op["method"], op["params"]) for op in ops]


def read(params: Mapping[str, Any]) -> QueryParams:
    """A read as the JSON-RPC boundary hands it to a backend: validated ``QueryParams``."""
    return QueryParams.model_validate(params)


def emulator_config() -> Any:
    """A ``BigQueryConfig`` on the shared loopback emulator (started on first use), with a
    dataset prefix no other test uses, so tests share one emulator and no tables."""
    from lorchestra_dagster.storacle.backends import bigquery_emulator
    from lorchestra_dagster.storacle.backends.bigquery_config import BigQueryConfig

    emulator = bigquery_emulator.shared()
    return BigQueryConfig(
        project=emulator.project,
        api_endpoint=emulator.url,
        dataset_prefix=f"t{uuid.uuid4().hex[:10]}_",
    )


__all__ = [
    "DEMO_SOURCE",
    "INGEST_STAMPS",
    "JOBS",
    "REPO",
    "dagster_home",
    "emulator_config",
    "free_port",
    "plan_ops",
    "raw_seed_job",
    "read",
    "upsert_job",
    "use_catalog",
    "write_catalog",
    "write_schema",
    "write_transform",
]
