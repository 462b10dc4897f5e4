"""Fixtures for spec tests: tiny catalogs written to tmp_path, never the shared jobs/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from kit import write_catalog as write_files
from spec_fixtures import CLEAN_FILES

WriteCatalog = Callable[..., Path]


@pytest.fixture
def write_catalog(tmp_path: Path) -> WriteCatalog:
    """Write ``files`` (relative path -> YAML text) into a fresh catalog directory.

    ``base=True`` starts from the clean catalog, so one case adds one problem.
    """

    def write(files: dict[str, str], *, base: bool = True) -> Path:
        return write_files(tmp_path / "catalog", {**(CLEAN_FILES if base else {}), **files})

    return write
