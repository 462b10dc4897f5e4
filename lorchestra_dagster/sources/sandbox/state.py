"""Sandbox state: the practice, sorted indexes, issued tokens and armed faults."""

from __future__ import annotations

import bisect
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from lorchestra_dagster.sources.sandbox.faults import Faults
from lorchestra_dagster.sources.sandbox.generate import Practice
from lorchestra_dagster.timestamps import epoch_seconds

# Credentials the sandbox accepts; `sandbox_env()` hands them to connectors.
SANDBOX_ENV = {
    "GMAIL_ACCT1_TOKEN": "sandbox-gmail-acct1",
    "GMAIL_ACCT2_TOKEN": "sandbox-gmail-acct2",
    "GOOGLE_FORMS_TOKEN": "sandbox-google-forms",
    "EXCHANGE_CLIENT_SECRET": "sandbox-client-secret",
    "DATAVERSE_CLIENT_SECRET": "sandbox-client-secret",
    "STRIPE_API_KEY": "sk_test_sandbox",
}


def sandbox_env() -> dict[str, str]:
    """Environment variables that make the shipped sources.yaml authenticate to the sandbox."""
    return dict(SANDBOX_ENV)


TS_FIELD = {
    "gmail": "internalDate",
    "exchange": "receivedDateTime",
    "dataverse": "modifiedon",
    "stripe": "created",
    "forms": "lastSubmittedTime",
}


@dataclass
class SandboxState:
    """The practice, its indexes, issued tokens and armed faults."""

    practice: Practice
    faults: Faults = field(default_factory=Faults)
    issued_tokens: set[str] = field(default_factory=set)
    requests: int = 0
    # Seconds every data request waits before it is answered: a real vendor's round trip, so
    # bench/run.py can show what concurrent ingest buys (P6). 0 on loopback by default.
    latency_s: float = 0.0
    # Data requests being answered right now and the most seen at once: what tests read to
    # check that a connector's concurrency is bounded (one event loop: no lock needed).
    in_flight: int = 0
    max_in_flight: int = 0
    # The client (host, port) of every data request: one per TCP connection, so tests can
    # tell a connector that keeps its connection alive from one that opens one per request.
    peers: set[tuple[str, int]] = field(default_factory=set)
    # The paths of the latest data requests in arrival order (bounded: a daemon runs for
    # days): tests read whose requests interleaved, i.e. which jobs ran side by side.
    paths: deque[str] = field(default_factory=lambda: deque(maxlen=10_000))
    _index: dict[str, list[tuple[float, str, dict[str, Any]]]] = field(default_factory=dict)
    _by_id: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    _keys: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    _gen: int = -1
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_clients(self, n: int) -> dict[str, int]:
        with self._lock:
            return self.practice.add_clients(n)

    def sorted_stream(self, stream: str, kind: str) -> list[tuple[float, str, dict[str, Any]]]:
        """Objects of ``stream`` ascending by (source time, id); rebuilt after additions."""
        with self._lock:
            if self._gen != self.practice.generation:
                self._index.clear()
                self._by_id.clear()
                self._keys.clear()
                self._gen = self.practice.generation
            if stream not in self._index:
                ts_field = TS_FIELD[kind]
                rows = [
                    (epoch_seconds(o[ts_field]), _object_id(o), o)
                    for o in self.practice.streams[stream]
                ]
                rows.sort(key=lambda t: (t[0], t[1]))
                self._index[stream] = rows
                self._by_id[stream] = {r[1]: r[2] for r in rows}
                self._keys[stream] = [(r[0], r[1]) for r in rows]
            return self._index[stream]

    def span(self, stream: str, kind: str, bounds: list[tuple[str, float]]) -> tuple[int, int]:
        """Index range ``[lo, hi)`` of the sorted stream whose times satisfy every bound.

        Bisection keeps list calls cheap on a 10,000-client practice.
        """
        rows = self.sorted_stream(stream, kind)
        keys = self._keys[stream]
        lo, hi = 0, len(rows)
        for op, v in bounds:
            if op in ("gt", "le", "eq"):
                edge = bisect.bisect_right(keys, (v, "\uffff"))
            if op in ("ge", "lt", "eq"):
                low_edge = bisect.bisect_left(keys, (v, ""))
            if op == "gt":
                lo = max(lo, edge)
            elif op == "ge":
                lo = max(lo, low_edge)
            elif op == "lt":
                hi = min(hi, low_edge)
            elif op == "le":
                hi = min(hi, edge)
            else:
                lo, hi = max(lo, low_edge), min(hi, edge)
        return lo, max(lo, hi)

    def position(self, stream: str, kind: str, obj_id: str) -> int | None:
        """Index of object ``obj_id`` in the sorted stream, or None."""
        obj = self.get(stream, kind, obj_id)
        if obj is None:
            return None
        key = (epoch_seconds(obj[TS_FIELD[kind]]), obj_id)
        return bisect.bisect_left(self._keys[stream], key)

    def get(self, stream: str, kind: str, obj_id: str) -> dict[str, Any] | None:
        self.sorted_stream(stream, kind)
        return self._by_id[stream].get(obj_id)


def _object_id(obj: dict[str, Any]) -> str:
    for key in ("id", "responseId", "contactid", "cr_clientsessionid", "cr_clientreportid"):
        if key in obj:
            return str(obj[key])
    raise KeyError("object without id")
