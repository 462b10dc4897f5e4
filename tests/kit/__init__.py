"""The shared test kit: repository paths and free loopback ports, in one place.

Test folders have no ``__init__``; ``tests/`` is on ``sys.path`` (its conftest
sits there), so any test imports ``from kit import REPO, JOBS, free_port``.
"""

from __future__ import annotations

import socket
from pathlib import Path

#: The repository checkout the tests run from.
REPO = Path(__file__).resolve().parents[2]
#: The shipped catalog.
JOBS = REPO / "jobs"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


__all__ = ["JOBS", "REPO", "free_port"]
