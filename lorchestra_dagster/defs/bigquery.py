"""dagster-gcp's ``BigQueryResource`` for lorchestra's warehouse.

The subclass adds the fields lorchestra needs (an API endpoint for the emulator,
anonymous auth, a dataset prefix) and hands everything to the data plane's
``BigQueryConfig``, so a Dagster asset or op gets the same clients and the same
storacle backend as the CLI. ``project``, ``location``, ``gcp_credentials`` and
``EnvVar`` config are the upstream resource's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from dagster_gcp import BigQueryResource
from google.cloud import bigquery
from pydantic import Field

from lorchestra_dagster.storacle.backends.bigquery import BigQueryBackend
from lorchestra_dagster.storacle.backends.bigquery_config import BigQueryConfig


class LorchestraBigQueryResource(BigQueryResource):
    """``BigQueryResource`` plus an API endpoint, anonymous auth and a dataset prefix.

    Example:
        ``LorchestraBigQueryResource(project=EnvVar("GOOGLE_CLOUD_PROJECT"),
        gcp_credentials=EnvVar("LORCHESTRA_BQ_CREDENTIALS"))`` in production;
        ``LorchestraBigQueryResource(project="local", api_endpoint="http://127.0.0.1:9050")``
        against the emulator.
    """

    api_endpoint: str | None = Field(
        default=None,
        description="REST endpoint override (a BigQuery emulator URL); None = Google's API",
    )
    anonymous: bool | None = Field(
        default=None,
        description="Send no credentials; defaults to true when api_endpoint is set",
    )
    dataset_prefix: str = Field(
        default="",
        description="Prefix of lorchestra's datasets (raw, canonical, derived, wal, ops)",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LorchestraBigQueryResource:
        """The resource for the variables ``BigQueryConfig.from_env`` reads."""
        return cls(**BigQueryConfig.from_env(env).model_dump())

    def config(self) -> BigQueryConfig:
        """The data plane's config: every field the two share, read by name (one list)."""
        return BigQueryConfig(**{name: getattr(self, name) for name in BigQueryConfig.model_fields})

    @contextmanager
    def get_client(self) -> Iterator[bigquery.Client]:
        """Same contract as dagster-gcp's ``get_client``, honouring the extra fields."""
        client = self.config().create_client()
        try:
            yield client
        finally:
            client.close()

    def make_backend(self) -> BigQueryBackend:
        """A storacle warehouse backend that owns a fresh client."""
        return self.config().make_backend()
