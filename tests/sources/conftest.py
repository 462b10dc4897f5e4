"""Fixtures: a sandbox on a free loopback port and a catalog pointing at it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from sources_kit import write_catalog

from lorchestra_dagster.sources.sandbox.generate import Practice, generate
from lorchestra_dagster.sources.sandbox.server import SandboxHandle, serve_in_thread

CLIENTS, SEED = 14, 1


@pytest.fixture(scope="session")
def base_practice() -> Practice:
    return generate(CLIENTS, SEED)


@pytest.fixture
def sandbox(base_practice: Practice) -> SandboxHandle:
    handle = serve_in_thread(copy.deepcopy(base_practice))
    yield handle
    handle.stop()


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "catalog")
