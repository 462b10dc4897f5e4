"""The one way to pick a free loopback port for a child process to listen on.

The BigQuery emulator and the tests start servers that bind a port themselves;
they need a number the OS says is free now. (A server of ours that can bind
port 0 itself, as ``storacle serve`` and the sandbox do, should do that
instead: no window for another process to take the port.)
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it, then it is released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
