"""Fixtures for the Dagster face: the mini catalog (see dagster_helpers), an instance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster_helpers import NOTES, make_catalog, write_notes
from kit import use_catalog


@pytest.fixture
def mini(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _isolated_home: Path) -> dict:
    """Mini catalog + drop folder + DAGSTER_HOME, exported to the environment."""
    drop = tmp_path / "drop"
    write_notes(drop, "notes_a.jsonl", NOTES)
    cat = make_catalog(tmp_path, drop)
    dagster_home = use_catalog(monkeypatch, cat, _isolated_home)
    return {"catalog": cat, "drop": drop, "home": _isolated_home, "dagster_home": dagster_home}


@pytest.fixture
def instance(mini: dict) -> Iterator:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(mini["dagster_home"])) as inst:
        yield inst
