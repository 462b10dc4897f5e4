"""Suite-wide guards: every test gets its own LORCHESTRA_HOME and never the user's home."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("NO_GCE_CHECK", "true")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """A fresh LORCHESTRA_HOME per test, and HOME pointed away from the real one."""
    home = tmp_path_factory.mktemp("lhome")
    monkeypatch.setenv("LORCHESTRA_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("userhome")))
    monkeypatch.delenv("STORACLE_URL", raising=False)
    monkeypatch.delenv("LORCHESTRA_SANDBOX_URL", raising=False)
    _no_stale_dagster_state()
    yield home


def _no_stale_dagster_state() -> None:
    """Forget the Dagster state storage a previous test's instance left current.

    Dagster keeps the open instance's defs-state storage in a context variable;
    a fixture that yields inside ``with instance:`` can leave it set after the
    instance (and its temp folder) are gone, and the next ``Definitions`` built
    outside an instance would read it.
    """
    from dagster._core.storage.defs_state.base import _current_storage

    _current_storage.set(None)
