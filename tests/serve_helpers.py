"""A real `lorchestra storacle serve` process on 127.0.0.1 for the tests that need one.

The test process and the server share ``LORCHESTRA_HOME``, so both read the same
token file (``auth.load_token``); ``wait_healthy`` proves the server answers an
authenticated ``GET /health`` before a test talks to it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from kit import free_port

from lorchestra_dagster.storacle.auth import load_token

LORCHESTRA = Path(sys.executable).parent / "lorchestra"


@dataclass
class Served:
    url: str
    token: str
    proc: subprocess.Popen[bytes]
    home: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}", "content-type": "application/json"}


def start(home: Path, env: Mapping[str, str] | None = None, *, timeout_s: float = 60) -> Served:
    """Start a server on a free port and wait until it answers; the caller stops it."""
    port = free_port()
    full = {**os.environ, "LORCHESTRA_HOME": str(home), **(env or {})}
    token = full.get("LORCHESTRA_STORACLE_TOKEN") or load_token(home, full)
    proc = subprocess.Popen(
        [str(LORCHESTRA), "storacle", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    served = Served(f"http://127.0.0.1:{port}", token, proc, home)
    wait_healthy(served, timeout_s)
    return served


def wait_healthy(served: Served, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            r = httpx.get(f"{served.url}/health", headers=served.headers, timeout=1)
            if r.status_code == 200:
                return
        except httpx.TransportError:
            pass
        if served.proc.poll() is not None or time.monotonic() > deadline:
            served.proc.kill()
            err = served.proc.stderr.read().decode() if served.proc.stderr else ""
            raise RuntimeError(f"server did not start: {err[-2000:]}")
        time.sleep(0.1)


def stop(served: Served) -> str:
    """Terminate the server; its stderr (for log scans)."""
    if served.proc.poll() is None:
        served.proc.terminate()
    try:
        _, err = served.proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        served.proc.kill()
        _, err = served.proc.communicate()
    return err.decode(errors="replace") if err else ""


@contextmanager
def serving(home: Path, env: Mapping[str, str] | None = None) -> Iterator[Served]:
    served = start(home, env)
    try:
        yield served
    finally:
        stop(served)
