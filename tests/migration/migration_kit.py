"""Catalogs shaped like the original lorchestra's, written into tmp folders for the tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kit import write_catalog

from lorchestra_dagster.engine import Services
from lorchestra_dagster.settings import Settings

__all__ = ["issues_of", "services_for", "write_catalog"]


@contextmanager
def services_for(catalog: Path, home: Path) -> Iterator[Services]:
    """In-process services (DuckDB warehouse, vault) over ``catalog`` in ``home``."""
    svc = Services.from_settings(Settings.from_env(jobs_dir=catalog, home=home))
    try:
        yield svc
    finally:
        svc.client.close()


def issues_of(catalog: Path, rel: str) -> list[tuple[str, int, str]]:
    """(code, line, message) of every error ``load_report`` finds in file ``rel``."""
    from lorchestra_dagster.catalog_service import load_report

    target = str(catalog / rel)
    return [(i.code, i.line, i.message) for i in load_report(catalog).errors if i.path == target]
