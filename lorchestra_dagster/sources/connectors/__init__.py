"""Connectors by name: each a settings model and a ``fetch(request)`` function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lorchestra_dagster.sources.connectors import (
    dataverse,
    exchange,
    gmail,
    google_forms,
    jsonl,
    stripe,
)
from lorchestra_dagster.sources.connectors.base import (
    FetchRequest,
    FetchResult,
    StreamSettings,
    Window,
)


@dataclass(frozen=True)
class Connector:
    """A connector: how to validate its settings and how to fetch."""

    settings: type[StreamSettings]
    fetch: Callable[[FetchRequest], FetchResult]


CONNECTORS: dict[str, Connector] = {
    "gmail": Connector(gmail.GmailSettings, gmail.fetch),
    "google_forms": Connector(google_forms.GoogleFormsSettings, google_forms.fetch),
    "exchange": Connector(exchange.ExchangeSettings, exchange.fetch),
    "dataverse": Connector(dataverse.DataverseSettings, dataverse.fetch),
    "stripe": Connector(stripe.StripeSettings, stripe.fetch),
    "jsonl": Connector(jsonl.JsonlSettings, jsonl.fetch),
}

__all__ = ["CONNECTORS", "Connector", "FetchRequest", "FetchResult", "StreamSettings", "Window"]
