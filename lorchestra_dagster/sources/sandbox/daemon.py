"""The sandbox as a background process a person can find: ``lorchestra sandbox up|down``.

A sandbox started by ``sandbox up`` (or ``sandbox serve`` in a terminal)
records itself in ``$LORCHESTRA_HOME/sandbox.json`` (pid, URL, clients,
seed), so ``sandbox env`` prints the lines that point every stream at it,
``make ui`` and ``make demo`` find it, and ``sandbox down`` stops exactly that
process. The file is written once the socket is bound, which is also how a
free port (``--port 0``) reaches the caller.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.settings import Settings

STATE_FILE = "sandbox.json"
LOG_FILE = "sandbox.log"
DEFAULT_PORT = 8766
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SandboxInfo:
    """A sandbox process of one home, as its state file records it."""

    pid: int
    url: str
    clients: int
    seed: int


def state_path(settings: Settings) -> Path:
    return settings.home / STATE_FILE


def write_state(settings: Settings, info: SandboxInfo) -> None:
    """Record the running sandbox (0600: it names a local port, nothing secret, still private)."""
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = state_path(settings)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(info), fh)
    os.replace(tmp, path)


def clear_state(settings: Settings, pid: int | None = None) -> None:
    """Forget the state file (only if it still names ``pid``, when given)."""
    path = state_path(settings)
    current = read_state(settings)
    if current is not None and pid is not None and current.pid != pid:
        return
    path.unlink(missing_ok=True)


def read_state(settings: Settings) -> SandboxInfo | None:
    path = state_path(settings)
    try:
        return SandboxInfo(**json.loads(path.read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def _is_sandbox_process(pid: int) -> bool:
    """True when ``pid`` is alive and is one of ours (a reused pid is never signalled)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    text = b" ".join(cmdline)
    return b"sandbox" in text and (b"lorchestra" in text)


def answers(url: str, timeout: float = 2.0) -> bool:
    """Does a sandbox answer at ``url`` (its counts endpoint)?"""
    try:
        return httpx.get(f"{url}/_sandbox/counts", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def running(settings: Settings) -> SandboxInfo | None:
    """The sandbox of this home when its process is alive; a stale state file is removed."""
    info = read_state(settings)
    if info is None:
        return None
    if not _is_sandbox_process(info.pid):
        clear_state(settings, info.pid)
        return None
    return info


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0 = a free port), or an error naming the fix."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PermanentError(
            f"sandbox: cannot listen on {host}:{port} ({exc.strerror}); pick another with "
            "--port (0 = any free port)",
            code="port_in_use",
        ) from None
    sock.listen(128)
    return sock


def port_free(host: str, port: int) -> bool:
    try:
        bind_socket(host, port).close()
    except PermanentError:
        return False
    return True


def start(
    settings: Settings,
    *,
    port: int = DEFAULT_PORT,
    clients: int = 30,
    seed: int = 7,
    host: str = "127.0.0.1",
) -> tuple[SandboxInfo, bool]:
    """Start the sandbox in the background (or find the running one); ``(info, started)``.

    The child runs ``lorchestra sandbox serve`` in its own session, so closing
    the terminal or Ctrl-C in it does not stop the sandbox; its output goes to
    ``$LORCHESTRA_HOME/sandbox.log``. When ``port`` is taken by something else
    a free port is used instead (the state file tells every client where).
    """
    current = running(settings)
    if current is not None:
        return current, False
    if port and not port_free(host, port):
        port = 0
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_path = settings.home / LOG_FILE
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    cmd = [sys.executable, "-m", "lorchestra_dagster", "sandbox", "serve"]
    cmd += ["--host", host, "--port", str(port), "--clients", str(clients), "--seed", str(seed)]
    cmd += ["--jobs-dir", str(settings.jobs_dir)]
    env = {**os.environ, "LORCHESTRA_HOME": str(settings.home)}
    with os.fdopen(fd, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        info = read_state(settings)
        if info is not None and info.pid == proc.pid and answers(info.url):
            return info, True
        if proc.poll() is not None:
            raise PermanentError(
                f"sandbox: the server exited with code {proc.returncode} before answering; "
                f"see {log_path}",
                code="sandbox_start",
            )
        time.sleep(0.1)
    proc.terminate()
    raise PermanentError(
        f"sandbox: no answer within {START_TIMEOUT_S:.0f}s; see {log_path}", code="sandbox_start"
    )


def stop(settings: Settings, timeout_s: float = 10.0) -> SandboxInfo | None:
    """Stop this home's sandbox (SIGTERM, then SIGKILL after ``timeout_s``); None if none ran."""
    info = running(settings)
    if info is None:
        return None
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _is_sandbox_process(info.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _is_sandbox_process(info.pid):
        os.kill(info.pid, signal.SIGKILL)
    clear_state(settings, info.pid)
    return info


def env_lines(url: str) -> list[str]:
    """``export`` lines pointing every stream of the shipped catalog at the sandbox."""
    from lorchestra_dagster.sources.sandbox.state import sandbox_env

    lines = [f"export LORCHESTRA_SANDBOX_URL={url}"]
    lines += [f"export {key}={value}" for key, value in sandbox_env().items()]
    return lines
