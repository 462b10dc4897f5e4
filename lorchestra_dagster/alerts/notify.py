"""Tell someone about a new critical alert: a command or a loopback webhook.

Configured in the environment, never in the catalog (a webhook URL is an
operator's setting):

- ``LORCHESTRA_ALERT_COMMAND``: a command line (split like a shell would,
  never run through one) that gets the notice as JSON on stdin; a non-zero
  exit is a failure.
- ``LORCHESTRA_ALERT_WEBHOOK``: an ``http://`` URL on loopback (127.0.0.1,
  ::1, localhost) that gets the notice as a JSON POST; a non-2xx answer is a
  failure. A relay on the same machine forwards it wherever the practice
  wants (a pager, a phone); lorchestra itself sends nothing off the machine.

The notice carries the alert id, code, severity, instrument, dates and the
rule's message: never an answer, a name or an email.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.settings import Settings

TIMEOUT_S = 10.0
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
NOTICE_FIELDS = ("alert_id", "code", "severity", "instrument_code", "occurred_at", "message")


@dataclass(frozen=True)
class Notifier:
    """Where notices go: ``kind`` is ``command`` or ``webhook``."""

    kind: str
    target: str

    def send(self, notice: dict[str, Any]) -> None:
        """Deliver one notice; raises ``PermanentError`` (no values) when it did not arrive."""
        body = json.dumps(notice, sort_keys=True, default=str)
        if self.kind == "command":
            try:
                done = subprocess.run(  # argv from the operator's own environment
                    shlex.split(self.target),
                    input=body,
                    text=True,
                    capture_output=True,
                    timeout=TIMEOUT_S,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise PermanentError(
                    f"alert command failed to run ({type(exc).__name__})", code="E_NOTIFY"
                ) from None
            if done.returncode != 0:
                raise PermanentError(f"alert command exited {done.returncode}", code="E_NOTIFY")
            return
        import httpx

        try:
            resp = httpx.post(
                self.target,
                content=body,
                headers={"content-type": "application/json"},
                timeout=TIMEOUT_S,
            )
        except httpx.HTTPError as exc:
            raise PermanentError(
                f"alert webhook unreachable ({type(exc).__name__})", code="E_NOTIFY"
            ) from None
        if not 200 <= resp.status_code < 300:
            raise PermanentError(f"alert webhook answered {resp.status_code}", code="E_NOTIFY")


def notifier_from_env(env: Mapping[str, str]) -> Notifier | None:
    """The configured notifier, ``None`` when neither variable is set.

    Raises:
        PermanentError: a webhook that is not ``http(s)://`` on loopback.
    """
    settings = Settings.from_env(env)
    command = settings.alert_command.strip()
    if command:
        return Notifier("command", command)
    url = settings.alert_webhook.strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or (parts.hostname or "") not in LOOPBACK:
        raise PermanentError(
            "LORCHESTRA_ALERT_WEBHOOK must be an http(s) URL on loopback (127.0.0.1, ::1 or "
            "localhost); run a relay there to forward notices elsewhere",
            code="E_NOTIFY_CONFIG",
        )
    return Notifier("webhook", url)


def notice(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON a notifier sends for ``alert`` (allow-listed fields only)."""
    out = {k: alert.get(k) for k in NOTICE_FIELDS}
    out["kind"] = "clinical_safety_alert"
    out["acknowledge"] = f"lorchestra alerts ack {alert.get('alert_id')} --note '...'"
    return out
