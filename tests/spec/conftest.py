"""Fixtures for spec tests: tiny catalogs written to tmp_path, never the shared jobs/."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from spec_fixtures import CLEAN_FILES

WriteCatalog = Callable[..., Path]


@pytest.fixture
def write_catalog(tmp_path: Path) -> WriteCatalog:
    """Write ``files`` (relative path -> YAML text) into a fresh catalog directory.

    ``base=True`` starts from the clean catalog, so one case adds one problem.
    """

    def write(files: dict[str, str], *, base: bool = True) -> Path:
        root = tmp_path / "catalog"
        merged = {**(CLEAN_FILES if base else {}), **files}
        for rel, text in merged.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        return root

    return write
