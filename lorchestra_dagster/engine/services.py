"""What step handlers need from the outside world, bundled so it can be injected.

The CLI, ``execute(envelope)`` and the Dagster ops all build a ``Services``
and hand it to the same handlers; tests build one over a temp home.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lorchestra_dagster.engine.tables  # noqa: F401 - declares the run tables to storacle
from lorchestra_dagster.settings import Settings


@dataclass
class Services:
    """Settings, the storacle client and the loaded catalog for one process."""

    settings: Settings
    client: Any
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _catalog: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings, env: Mapping[str, str] | None = None) -> Services:
        from lorchestra_dagster.storacle.client import make_client

        return cls(
            settings=settings,
            client=make_client(settings),
            env=dict(os.environ if env is None else env),
        )

    @property
    def catalog_dir(self) -> Path:
        return self.settings.jobs_dir

    def use_catalog(self, catalog: Any) -> None:
        """Run against ``catalog``, already loaded by the caller (the Dagster definitions').

        The op's jobs then compile from the very catalog its asset specs were built from,
        and a run does not parse every YAML file a second time (about 1.5 s of CPU here).
        """
        with self._lock:
            self._catalog = catalog

    @property
    def catalog(self) -> Any:
        """The catalog, loaded once per Services (YAML parsing is not free)."""
        with self._lock:
            if self._catalog is None:
                from lorchestra_dagster.spec import load_catalog

                self._catalog = load_catalog(self.catalog_dir)
            return self._catalog
