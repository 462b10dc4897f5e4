"""How to reach BigQuery: a typed config that builds clients and the warehouse backend.

The data plane knows nothing of Dagster: this config is plain pydantic, and the
Dagster resource (``defs/bigquery.py``) is a thin ``dagster-gcp`` subclass that
hands its fields to it. dagster-gcp's own ``BigQueryResource`` cannot point at
an emulator and writes ``gcp_credentials`` to a temporary file named by
``GOOGLE_APPLICATION_CREDENTIALS`` for the whole process; here the endpoint is a
field (the loopback emulator in tests and demos, with anonymous credentials) and
service-account credentials are built in memory.

From the environment (``from_env``), never YAML:

- ``GOOGLE_CLOUD_PROJECT`` (or ``LORCHESTRA_BQ_PROJECT``): the project.
- ``LORCHESTRA_BQ_DATASET_PREFIX``: prefix of the datasets (``dev_`` -> ``dev_raw``).
- ``LORCHESTRA_BQ_ENDPOINT``: an emulator URL; implies anonymous credentials.
- ``LORCHESTRA_BQ_LOCATION``: dataset/job location (default ``US``).
- ``LORCHESTRA_BQ_CREDENTIALS``: base64 service-account JSON; otherwise
  application default credentials (``GOOGLE_APPLICATION_CREDENTIALS``,
  workload identity, ``gcloud auth application-default login``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import bigquery
from pydantic import BaseModel, ConfigDict, Field

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.backends.bigquery import BigQueryBackend

DEFAULT_LOCATION = "US"


class BigQueryConfig(BaseModel):
    """Project, location, credentials, endpoint and dataset prefix of one warehouse.

    Example:
        ``BigQueryConfig(project="local", api_endpoint="http://127.0.0.1:9050")``
        against the emulator; ``BigQueryConfig.from_env()`` in production.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: str | None = Field(default=None, description="GCP project; None = the client's")
    location: str | None = Field(default=None, description="Dataset/job location")
    gcp_credentials: str | None = Field(
        default=None, description="Base64 service-account JSON; None = application default"
    )
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
    def from_env(cls, env: Mapping[str, str] | None = None) -> BigQueryConfig:
        """The config named by environment variables (see the module docstring)."""
        return cls.from_settings(Settings.from_env(env))

    @classmethod
    def from_settings(cls, settings: Settings) -> BigQueryConfig:
        """The config of ``settings.bq_*`` (``LORCHESTRA_BQ_*``, ``GOOGLE_CLOUD_PROJECT``)."""
        project = settings.bq_project
        endpoint = settings.bq_endpoint
        if endpoint and not project:
            project = "local"  # the emulator accepts any project id
        if not project:
            raise PermanentError(
                "LORCHESTRA_BACKEND=bigquery needs a project: set GOOGLE_CLOUD_PROJECT "
                "(or LORCHESTRA_BQ_ENDPOINT for the emulator)",
                code="bq_config",
            )
        credentials = settings.bq_credentials
        return cls(
            project=project,
            location=settings.bq_location or DEFAULT_LOCATION,
            gcp_credentials=credentials.get_secret_value() if credentials else None,
            api_endpoint=endpoint,
            dataset_prefix=settings.bq_dataset_prefix,
        )

    def credentials(self) -> Credentials | None:
        """Anonymous for an emulator, in-memory service account, or None for ADC."""
        anonymous = self.anonymous if self.anonymous is not None else bool(self.api_endpoint)
        if anonymous:
            return AnonymousCredentials()
        if self.gcp_credentials:
            from google.oauth2 import service_account

            try:
                info = json.loads(base64.b64decode(self.gcp_credentials))
            except ValueError as err:
                raise PermanentError(
                    "gcp_credentials is not base64-encoded service-account JSON "
                    "(encode the key file with `base64 -w0 key.json`)",
                    code="bq_credentials",
                ) from err
            account: Credentials = service_account.Credentials.from_service_account_info(info)
            return account
        return None  # application default credentials, resolved by the client

    def create_client(self) -> bigquery.Client:
        """A new client; the caller owns it (``close()`` when done)."""
        options = ClientOptions(api_endpoint=self.api_endpoint) if self.api_endpoint else None
        return bigquery.Client(
            project=self.project,
            location=self.location,
            credentials=self.credentials(),
            client_options=options,
        )

    def make_backend(self) -> BigQueryBackend:
        """A storacle warehouse backend that owns a fresh client."""
        return BigQueryBackend(
            self.create_client(),
            dataset_prefix=self.dataset_prefix,
            location=self.location or DEFAULT_LOCATION,
        )
