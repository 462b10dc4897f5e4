"""dagster-gcp's ``BigQueryResource`` with an endpoint hook, and the backend factory.

dagster-gcp's resource builds ``bigquery.Client(project, location)`` and nothing
else: it cannot point at an emulator, and its ``gcp_credentials`` path writes the
key to a temporary file and sets ``GOOGLE_APPLICATION_CREDENTIALS`` for the whole
process. The subclass here adds ``api_endpoint`` (the loopback emulator in tests
and demos), anonymous credentials for that emulator, and builds service-account
credentials in memory. Everything else (project, location, ``EnvVar`` config,
``get_client``) is the upstream resource, so Dagster definitions stay ordinary.

Configuration comes from the environment, never YAML:

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
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from dagster_gcp import BigQueryResource
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import bigquery
from pydantic import Field

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.settings import Settings

if TYPE_CHECKING:
    from lorchestra_dagster.storacle.backends.bigquery import BigQueryBackend

DEFAULT_LOCATION = "US"


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

    def _credentials(self) -> Credentials | None:
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
            credentials=self._credentials(),
            client_options=options,
        )

    @contextmanager
    def get_client(self) -> Iterator[bigquery.Client]:
        """Same contract as dagster-gcp's ``get_client``, honouring the extra fields."""
        client = self.create_client()
        try:
            yield client
        finally:
            client.close()

    def make_backend(self) -> BigQueryBackend:
        """A storacle warehouse backend that owns a fresh client."""
        from lorchestra_dagster.storacle.backends.bigquery import BigQueryBackend

        return BigQueryBackend(
            self.create_client(),
            dataset_prefix=self.dataset_prefix,
            location=self.location or DEFAULT_LOCATION,
        )


def resource_from_env(env: Mapping[str, str] | None = None) -> LorchestraBigQueryResource:
    """The resource configured from environment variables (see the module docstring)."""
    env = os.environ if env is None else env
    project = env.get("LORCHESTRA_BQ_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT") or None
    endpoint = env.get("LORCHESTRA_BQ_ENDPOINT") or None
    if endpoint and not project:
        project = "local"  # the emulator accepts any project id
    if not project:
        raise PermanentError(
            "LORCHESTRA_BACKEND=bigquery needs a project: set GOOGLE_CLOUD_PROJECT "
            "(or LORCHESTRA_BQ_ENDPOINT for the emulator)",
            code="bq_config",
        )
    return LorchestraBigQueryResource(
        project=project,
        location=env.get("LORCHESTRA_BQ_LOCATION") or DEFAULT_LOCATION,
        gcp_credentials=env.get("LORCHESTRA_BQ_CREDENTIALS") or None,
        api_endpoint=endpoint,
        dataset_prefix=env.get("LORCHESTRA_BQ_DATASET_PREFIX") or "",
    )


def make_bigquery_backend(
    settings: Settings | None = None, env: Mapping[str, str] | None = None
) -> BigQueryBackend:
    """The BigQuery warehouse backend for ``LORCHESTRA_BACKEND=bigquery``.

    ``settings`` is accepted for symmetry with the DuckDB factory; BigQuery's
    configuration lives in environment variables (``resource_from_env``).
    """
    del settings
    return resource_from_env(env).make_backend()
