"""Fixtures for the BigQuery tests: one emulator per session, a fresh prefix per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kit import emulator_config

# These tests drive the backends directly; the run tables are declared as every entry
# into storacle from above declares them (engine/tables.py).
import lorchestra_dagster.engine.tables  # noqa: F401
from lorchestra_dagster.storacle.backends import bigquery_emulator
from lorchestra_dagster.storacle.backends.bigquery import BigQueryBackend
from lorchestra_dagster.storacle.backends.bigquery_config import BigQueryConfig


@pytest.fixture(scope="session")
def bq_emulator() -> Iterator[bigquery_emulator.Emulator]:
    """The local-bigquery emulator on 127.0.0.1 (set up on first use, stopped at the end)."""
    emulator = bigquery_emulator.shared()
    yield emulator
    emulator.stop()


@pytest.fixture
def bq_config(bq_emulator: bigquery_emulator.Emulator) -> BigQueryConfig:
    """A config on the emulator with a dataset prefix no other test uses."""
    config: BigQueryConfig = emulator_config()
    return config


@pytest.fixture
def bq(bq_config: BigQueryConfig) -> Iterator[BigQueryBackend]:
    backend = bq_config.make_backend()
    yield backend
    backend.close()
