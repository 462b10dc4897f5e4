"""Fixtures for the storacle tests.

``warehouse`` is the one place a warehouse backend is built: the conformance
tests take it and run against every backend named in its params.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit import emulator_config

from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.backends.base import WarehouseBackend
from lorchestra_dagster.storacle.client import InProcessTransport, StoracleClient
from lorchestra_dagster.storacle.plan import make_plan
from lorchestra_dagster.storacle.service import StoracleService, close_services


def build_warehouse(name: str, home: Path) -> WarehouseBackend:
    """A fresh, empty warehouse backend by name."""
    if name == "duckdb":
        from lorchestra_dagster.storacle.backends.duckdb import DuckDBBackend

        return DuckDBBackend(home / "warehouse.duckdb")
    if name == "bigquery":  # the loopback emulator; a fresh dataset prefix per test
        backend: WarehouseBackend = emulator_config().make_backend()
        return backend
    raise pytest.UsageError(f"unknown warehouse backend {name!r}")


@pytest.fixture(params=["duckdb", pytest.param("bigquery", marks=pytest.mark.e2e)])
def warehouse(request: pytest.FixtureRequest, _isolated_home: Path) -> Iterator[WarehouseBackend]:
    backend = build_warehouse(request.param, _isolated_home)
    yield backend
    backend.close()


@pytest.fixture
def settings(_isolated_home: Path) -> Settings:
    return Settings.from_env()


@pytest.fixture
def service(settings: Settings, warehouse: WarehouseBackend) -> StoracleService:
    return StoracleService(settings, warehouse=warehouse)


@pytest.fixture
def client(service: StoracleService) -> StoracleClient:
    """In-process client: the JSON-RPC request object handed to the same dispatcher as HTTP."""
    return StoracleClient(InProcessTransport(service))


@pytest.fixture(autouse=True)
def _close_cached_services() -> Iterator[None]:
    yield
    close_services()


def submit(
    client: StoracleClient, ops: list[tuple[str, dict[str, Any]]], *, dry_run: bool = False
) -> list[dict[str, Any]]:
    """Execute a plan built from ops; the per-op results."""
    out = client.execute_plan(make_plan(ops, {"run_id": "test"}), dry_run=dry_run)
    return [r["result"] for r in out["results"]]


def counts(result: dict[str, Any]) -> tuple[int, int, int, int]:
    return (result["inserted"], result["updated"], result["unchanged"], result["deleted"])


def table_rows(client: StoracleClient, dataset: str, table: str, key: str) -> list[dict]:
    return client.query({"dataset": dataset, "table": table, "order_by": key})
