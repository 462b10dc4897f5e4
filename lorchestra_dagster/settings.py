"""Every ``LORCHESTRA_*`` / ``STORACLE_*`` variable, read once into one typed ``Settings``.

``Settings()`` is pydantic-settings reading the process environment;
``Settings.from_env(env)`` validates an explicit mapping the same way (tests, the
Dagster resource's overrides). Code reads fields, never ``os.environ``: a variable's
name, type, default and meaning live here only, ``lorchestra doctor`` shows them and
the README's table lists them (``tests/test_settings.py`` keeps the three in step).
Secrets are ``SecretStr``: printed as ``set``, never as a value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from lorchestra_dagster.errors import PermanentError

#: Set while ``Settings.from_env`` validates an explicit mapping (see settings_customise_sources).
_EXPLICIT: ContextVar[bool] = ContextVar("lorchestra_settings_explicit", default=False)

#: JSON-RPC request bodies larger than this are refused before parsing.
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024


#: DuckDB's ``memory_limit`` for the warehouse. Small on purpose: what DuckDB holds up
#: to it is mostly table blocks it can read again from the file (the OS caches them),
#: so a larger limit buys no speed here and makes a run's peak RSS grow with the
#: practice. Queries that need more spill to ``$LORCHESTRA_HOME/tmp/duckdb``. Figures
#: (docs/architecture.md, P3): at 1,000 clients 128MB against 2GB gave the same CPU
#: seconds (163 vs 161) and a peak RSS of 592 MB against 684 MB; but at 128MB a keyset
#: page of ``proj_form_responses`` over 9,000 synthetic responses failed for want of
#: memory (a part DuckDB does not spill), which 256MB read in 5.5 s (3.8 s at 2GB).
DUCKDB_MEMORY_LIMIT = "256MB"
#: The limit for one statement that does not fit in ``DUCKDB_MEMORY_LIMIT`` even alone: it
#: is rerun alone with this one (``storacle/backends/duckdb_gate.py``). A page of a
#: JSON-heavy view outgrew 256MB at 4,400 clients; the steady budget stays small.
DUCKDB_BURST_MEMORY_LIMIT = "1GB"


def _duckdb_size(text: str) -> str:
    """A DuckDB size (``256MB``, ``1.5GiB``): checked here, once, so the backend can
    splice it into ``SET memory_limit`` safely."""
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]?i?B", text.strip(), re.IGNORECASE):
        raise ValueError("must look like 2GB or 512MiB")
    return text.strip()


#: A DuckDB memory size setting.
DuckDBSize = Annotated[str, AfterValidator(_duckdb_size)]


class Limits(BaseModel):
    """Bounds on one storacle request, so one query can neither exhaust the machine nor
    stall the server. Defaults suit a 2-core, ~8 GB laptop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query_timeout_s: float = Field(default=120.0, gt=0, description="wall time of one statement")
    max_rows: int = Field(default=1_000_000, gt=0, description="rows one read may return")
    max_result_bytes: int = Field(
        default=512 * 1024 * 1024, gt=0, description="approximate size of one read's result"
    )
    memory_limit: DuckDBSize = Field(
        default=DUCKDB_MEMORY_LIMIT, description="DuckDB's memory_limit"
    )
    burst_memory_limit: DuckDBSize = Field(
        default=DUCKDB_BURST_MEMORY_LIMIT,
        description="DuckDB's memory_limit for one statement rerun alone after running out",
    )


def _var(name: str, *more: str) -> Any:
    """The environment variable(s) a field reads (the first one set wins)."""
    return AliasChoices(name, *more) if more else name


class Settings(BaseSettings):
    """Paths, switches and credentials of one process."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        env_ignore_empty=True,
        case_sensitive=True,
    )

    # -- where things live ----------------------------------------------------------------
    home: Path = Field(
        default=Path(".lorchestra"),
        validation_alias=_var("LORCHESTRA_HOME"),
        description="warehouse, vault and Dagster instance",
    )
    jobs_dir: Path = Field(
        default=Path("jobs"),
        validation_alias=_var("LORCHESTRA_JOBS_DIR"),
        description="the catalog of jobs and registries",
    )
    backend: Literal["duckdb", "bigquery"] = Field(
        default="duckdb", validation_alias=_var("LORCHESTRA_BACKEND"), description="warehouse"
    )
    storacle_url: str | None = Field(
        default=None,
        validation_alias=_var("STORACLE_URL"),
        description="a storacle server to use over HTTP instead of in-process",
    )
    sandbox_url: str | None = Field(
        default=None,
        validation_alias=_var("LORCHESTRA_SANDBOX_URL"),
        description="the loopback sandbox that stands in for the vendors",
    )
    # -- storacle bounds and the DuckDB file ------------------------------------------------
    query_timeout_s: float = Field(
        default=120.0,
        gt=0,
        validation_alias=_var("LORCHESTRA_QUERY_TIMEOUT_S"),
        description="wall time of one statement",
    )
    max_rows: int = Field(
        default=1_000_000,
        gt=0,
        validation_alias=_var("LORCHESTRA_MAX_ROWS"),
        description="rows one read may return",
    )
    max_result_bytes: int = Field(
        default=512 * 1024 * 1024,
        gt=0,
        validation_alias=_var("LORCHESTRA_MAX_RESULT_BYTES"),
        description="approximate size of one read's result",
    )
    duckdb_memory_limit: DuckDBSize = Field(
        default=DUCKDB_MEMORY_LIMIT,
        validation_alias=_var("LORCHESTRA_DUCKDB_MEMORY_LIMIT"),
        description="DuckDB's memory_limit",
    )
    duckdb_burst_memory_limit: DuckDBSize = Field(
        default=DUCKDB_BURST_MEMORY_LIMIT,
        validation_alias=_var("LORCHESTRA_DUCKDB_BURST_MEMORY_LIMIT"),
        description="DuckDB's memory_limit for one statement that ran out of memory, rerun alone",
    )
    duckdb_short_lock: bool = Field(
        default=False,
        validation_alias=_var("LORCHESTRA_DUCKDB_SHORT_LOCK"),
        description="open the warehouse per request so several processes share it "
        "(the Dagster code location sets it)",
    )
    duckdb_lock_timeout_s: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_var("LORCHESTRA_DUCKDB_LOCK_TIMEOUT_S"),
        description="how long a short-lock open waits for the file",
    )
    storacle_token: SecretStr | None = Field(
        default=None,
        validation_alias=_var("LORCHESTRA_STORACLE_TOKEN"),
        description="bearer token of the storacle server (else $LORCHESTRA_HOME/storacle.token)",
    )
    storacle_allowed_hosts: str = Field(
        default="",
        validation_alias=_var("LORCHESTRA_STORACLE_ALLOWED_HOSTS"),
        description="comma-separated Host/Origin names the server accepts besides loopback",
    )
    storacle_max_bytes: int = Field(
        default=DEFAULT_MAX_REQUEST_BYTES,
        gt=0,
        validation_alias=_var("LORCHESTRA_STORACLE_MAX_BYTES"),
        description="largest JSON-RPC request body the server parses",
    )
    # -- BigQuery ------------------------------------------------------------------------------
    bq_project: str | None = Field(
        default=None,
        validation_alias=_var("LORCHESTRA_BQ_PROJECT", "GOOGLE_CLOUD_PROJECT"),
        description="BigQuery project (or GOOGLE_CLOUD_PROJECT)",
    )
    bq_endpoint: str | None = Field(
        default=None,
        validation_alias=_var("LORCHESTRA_BQ_ENDPOINT"),
        description="BigQuery REST endpoint override (the emulator); implies anonymous auth",
    )
    bq_location: str = Field(
        default="US",
        validation_alias=_var("LORCHESTRA_BQ_LOCATION"),
        description="location of datasets and jobs",
    )
    bq_credentials: SecretStr | None = Field(
        default=None,
        validation_alias=_var("LORCHESTRA_BQ_CREDENTIALS"),
        description="base64 service-account JSON (else application default credentials)",
    )
    bq_dataset_prefix: str = Field(
        default="",
        validation_alias=_var("LORCHESTRA_BQ_DATASET_PREFIX"),
        description="prefix of the datasets (dev_ -> dev_raw)",
    )
    # -- steps ---------------------------------------------------------------------------------
    llm_url: str | None = Field(
        default=None,
        validation_alias=_var("LORCHESTRA_LLM_URL"),
        description="OpenAI-compatible chat endpoint of compute.llm steps",
    )
    llm_model: str = Field(
        default="default",
        validation_alias=_var("LORCHESTRA_LLM_MODEL"),
        description="model of compute.llm steps that name none",
    )
    llm_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=_var("LORCHESTRA_LLM_API_KEY"),
        description="bearer token of the LLM endpoint",
    )
    jsonata_engine: str | None = Field(
        default=None,
        validation_alias=_var("LORCHESTRA_JSONATA_ENGINE"),
        description="JSONata engine of the canonizer (default jsonatapy)",
    )
    # -- Dagster schedules, sensors and alerts ---------------------------------------------
    ingest_freshness_h: float = Field(
        default=26.0,
        gt=0,
        validation_alias=_var("LORCHESTRA_INGEST_FRESHNESS_H"),
        description="hours after which an ingest asset counts as stale",
    )
    daily_cron: str | None = Field(
        default=None,
        validation_alias=_var("LORCHESTRA_DAILY_CRON"),
        description="cron of the daily_all schedule (default 0 6 * * *)",
    )
    timezone: str | None = Field(
        default=None,
        validation_alias=_var("LORCHESTRA_TIMEZONE"),
        description="timezone of the schedule (default: TZ, else the machine's)",
    )
    schedule_max_lateness_h: float = Field(
        default=20.0,
        gt=0,
        validation_alias=_var("LORCHESTRA_SCHEDULE_MAX_LATENESS_H"),
        description="hours a missed daily tick may still run",
    )
    alert_command: str = Field(
        default="",
        validation_alias=_var("LORCHESTRA_ALERT_COMMAND"),
        description="command run for each new critical alert",
    )
    alert_webhook: str = Field(
        default="",
        validation_alias=_var("LORCHESTRA_ALERT_WEBHOOK"),
        description="loopback URL POSTed for each new critical alert",
    )
    user: str | None = Field(
        default=None,
        validation_alias=_var("LORCHESTRA_USER"),
        description="who acknowledges alerts (default: the login name)",
        json_schema_extra={"private": True},
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The process environment, unless ``from_env`` was handed a mapping (then that
        mapping alone: a test's settings never pick up the developer's variables)."""
        return (init_settings,) if _EXPLICIT.get() else (init_settings, env_settings)

    @field_validator("home", "jobs_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.absolute()

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        jobs_dir: str | Path | None = None,
        home: str | Path | None = None,
    ) -> Settings:
        """Settings from ``env`` (default: the process environment); ``jobs_dir`` and
        ``home`` win over the variables (command-line options)."""
        overrides: dict[str, Any] = {k: v for k, v in (("jobs_dir", jobs_dir), ("home", home)) if v}
        try:
            if env is None or env is os.environ:
                return cls(**overrides)
            # Keyed by the variable's name, so an error names the variable, not the field.
            values: dict[str, Any] = {}
            for name, names in variables().items():
                found = next((n for n in names if env.get(n)), None)
                if found is not None and name not in overrides:
                    values[found] = env[found]
            explicit = _EXPLICIT.set(True)
            try:
                return cls(**values, **overrides)
            finally:
                _EXPLICIT.reset(explicit)
        except ValidationError as err:
            # The messages without the input: a mistyped variable may hold anything.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
            )
            raise PermanentError(f"invalid settings: {problems}", code="settings") from None

    @property
    def limits(self) -> Limits:
        return Limits(
            query_timeout_s=self.query_timeout_s,
            max_rows=self.max_rows,
            max_result_bytes=self.max_result_bytes,
            memory_limit=self.duckdb_memory_limit,
            burst_memory_limit=self.duckdb_burst_memory_limit,
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

    def shown(self, env: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """One row per variable for ``lorchestra doctor``: name, field, whether the
        environment sets it, and its value (secrets and names: ``set``/``unset``)."""
        env = os.environ if env is None else env
        for name, names in variables().items():
            field = type(self).model_fields[name]
            value = getattr(self, name)
            hidden = field.annotation in (SecretStr, SecretStr | None) or bool(
                isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("private")
            )
            shown = ("set" if value else "unset") if hidden else value
            yield {
                "variable": " or ".join(names),
                "field": name,
                "set": any(env.get(n) for n in names),
                "value": str(shown) if shown is not None else None,
                "description": field.description,
            }


def variables() -> dict[str, tuple[str, ...]]:
    """Field name -> the environment variable(s) it reads, in declaration order."""
    out: dict[str, tuple[str, ...]] = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            out[name] = tuple(str(c) for c in alias.choices)
        elif isinstance(alias, str):
            out[name] = (alias,)
    return out
