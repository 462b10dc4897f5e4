"""Where things live, read from the environment once and passed down explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Paths and switches for one process; nothing here is a secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path = Field(description="LORCHESTRA_HOME: warehouse, vault and Dagster instance")
    jobs_dir: Path = Field(description="LORCHESTRA_JOBS_DIR: the catalog of jobs and registries")
    backend: Literal["duckdb", "bigquery"] = Field(default="duckdb")
    storacle_url: str | None = Field(default=None, description="STORACLE_URL: HTTP transport")
    sandbox_url: str | None = Field(default=None, description="LORCHESTRA_SANDBOX_URL")

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        jobs_dir: str | Path | None = None,
        home: str | Path | None = None,
    ) -> Settings:
        env = os.environ if env is None else env
        return cls(
            home=Path(home or env.get("LORCHESTRA_HOME") or ".lorchestra").absolute(),
            jobs_dir=Path(jobs_dir or env.get("LORCHESTRA_JOBS_DIR") or "jobs").absolute(),
            backend=env.get("LORCHESTRA_BACKEND") or "duckdb",  # type: ignore[arg-type]
            storacle_url=env.get("STORACLE_URL") or None,
            sandbox_url=env.get("LORCHESTRA_SANDBOX_URL") or None,
        )

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def vault_dir(self) -> Path:
        return self.home / "vault"

    @property
    def vault_db(self) -> Path:
        return self.vault_dir / "local.db"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"
