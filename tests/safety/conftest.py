"""Fixtures of the safety tests: the real catalog over a temp home, canonical form rows."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import REPO, use_catalog

CATALOG = REPO / "jobs"
sys.path.insert(0, str(REPO / "tests" / "instruments"))


@pytest.fixture
def home(_isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """LORCHESTRA_HOME with a Dagster instance, the repo catalog exported."""
    use_catalog(monkeypatch, CATALOG, _isolated_home)
    monkeypatch.delenv("LORCHESTRA_ALERT_COMMAND", raising=False)
    monkeypatch.delenv("LORCHESTRA_ALERT_WEBHOOK", raising=False)
    return _isolated_home


@pytest.fixture
def services(home: Path) -> Iterator:
    from lorchestra_dagster.engine import Services
    from lorchestra_dagster.settings import Settings

    svc = Services.from_settings(Settings.from_env(jobs_dir=CATALOG, home=home))
    yield svc
    svc.client.close()


@pytest.fixture
def instance(home: Path) -> Iterator:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home / "dagster")) as inst:
        yield inst
