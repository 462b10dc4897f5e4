"""Where things live, read from the environment once and passed down explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Limits(BaseModel):
    """Bounds on one storacle request, so one query can neither exhaust the machine nor
    stall the server. Defaults suit a 2-core, ~8 GB laptop; each has an env variable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query_timeout_s: float = Field(
        default=120.0, gt=0, description="LORCHESTRA_QUERY_TIMEOUT_S: wall time of one statement"
    )
    max_rows: int = Field(
        default=1_000_000, gt=0, description="LORCHESTRA_MAX_ROWS: rows one read may return"
    )
    max_result_bytes: int = Field(
        default=512 * 1024 * 1024,
        gt=0,
        description="LORCHESTRA_MAX_RESULT_BYTES: approximate size of one read's result",
    )
    memory_limit: str = Field(
        default="2GB", description="LORCHESTRA_DUCKDB_MEMORY_LIMIT: DuckDB's memory_limit"
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        names = {
            "query_timeout_s": "LORCHESTRA_QUERY_TIMEOUT_S",
            "max_rows": "LORCHESTRA_MAX_ROWS",
            "max_result_bytes": "LORCHESTRA_MAX_RESULT_BYTES",
            "memory_limit": "LORCHESTRA_DUCKDB_MEMORY_LIMIT",
        }
        return cls.model_validate({k: env[v] for k, v in names.items() if env.get(v)})


class Settings(BaseModel):
    """Paths and switches for one process; nothing here is a secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path = Field(description="LORCHESTRA_HOME: warehouse, vault and Dagster instance")
    jobs_dir: Path = Field(description="LORCHESTRA_JOBS_DIR: the catalog of jobs and registries")
    backend: Literal["duckdb", "bigquery"] = Field(default="duckdb")
    storacle_url: str | None = Field(default=None, description="STORACLE_URL: HTTP transport")
    sandbox_url: str | None = Field(default=None, description="LORCHESTRA_SANDBOX_URL")
    limits: Limits = Field(default_factory=Limits, description="Bounds on storacle requests")

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
            limits=Limits.from_env(env),
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
