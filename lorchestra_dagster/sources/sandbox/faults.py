"""Injected faults for the sandbox: rate limits, server errors, slow and broken pages.

Tests arm rules before a run; each matching request consumes one unit of a
rule's ``count``, so "three 429s then success" is one rule with ``count=3``.
"""

from __future__ import annotations

import threading
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["rate_limit", "server_error", "slow", "malformed"]


class FaultRule(BaseModel):
    """One armed fault."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind = Field(description="what goes wrong")
    count: int = Field(default=1, ge=0, description="how many matching requests it hits")
    path_contains: str = Field(default="", description="only requests whose path contains this")
    retry_after: float = Field(default=1.0, ge=0, description="Retry-After seconds for 429")
    delay_s: float = Field(default=0.5, ge=0, description="delay for slow pages")


class Faults:
    """Thread-safe list of armed fault rules and a log of what fired."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self.fired: list[tuple[str, str]] = []

    def add(
        self, kind: FaultKind, count: int = 1, path_contains: str = "", **kw: float
    ) -> FaultRule:
        rule = FaultRule(kind=kind, count=count, path_contains=path_contains, **kw)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, path: str) -> FaultRule | None:
        """Consume and return the first armed rule matching ``path``, if any."""
        with self._lock:
            for rule in self._rules:
                if rule.count > 0 and rule.path_contains in path:
                    rule.count -= 1
                    self.fired.append((rule.kind, path))
                    return rule
        return None
