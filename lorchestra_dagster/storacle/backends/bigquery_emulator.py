"""Start and stop the local BigQuery emulator (``scripts/bqemu.sh``) from Python.

Used by the test fixtures (one emulator per pytest process, shared by every
test that needs BigQuery) and by anyone running the demo against BigQuery
without a cloud project. The emulator runs in its own Python 3.13 venv
(``.venv-bqemu``), bound to 127.0.0.1 on a free port, with its data in a
temporary folder that is removed when it stops.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from lorchestra_dagster.errors import PermanentError, TransientError
from lorchestra_dagster.ports import free_port

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "bqemu.sh"
PROJECT = "local"


@dataclass
class Emulator:
    """A running emulator process and where to reach it."""

    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    project: str = PROJECT
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        """Terminate the process (then kill after 10 s) and remove its data (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def env(self, prefix: str = "") -> dict[str, str]:
        """Environment that points lorchestra's BigQuery backend at this emulator."""
        return {
            "LORCHESTRA_BACKEND": "bigquery",
            "LORCHESTRA_BQ_ENDPOINT": self.url,
            "GOOGLE_CLOUD_PROJECT": self.project,
            "LORCHESTRA_BQ_DATASET_PREFIX": prefix,
            "NO_GCE_CHECK": "true",
        }


def setup(timeout_s: float = 600) -> None:
    """Create or refresh ``.venv-bqemu`` (quick no-op when it is current)."""
    if not SCRIPT.is_file():
        raise PermanentError(
            f"{SCRIPT} not found: the emulator runs from a source checkout", code="bqemu"
        )
    done = subprocess.run(
        ["bash", str(SCRIPT), "setup"], capture_output=True, text=True, timeout=timeout_s
    )
    if done.returncode != 0:
        raise PermanentError(
            f"scripts/bqemu.sh setup failed (exit {done.returncode}): {done.stderr[-2000:]}",
            code="bqemu",
        )


def _healthy(url: str) -> bool:
    try:
        response = httpx.get(f"{url}/bigquery/v2/projects/{PROJECT}/datasets", timeout=2)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def start(*, timeout_s: float = 60, attempts: int = 3) -> Emulator:
    """Set up if needed, start on a free loopback port, wait until it answers."""
    setup()
    last = ""
    for _ in range(attempts):
        port = free_port()
        data_dir = Path(tempfile.mkdtemp(prefix="bqemu-"))
        log_path = data_dir / "emulator.log"
        env = {
            **os.environ,
            "BQEMU_DATA_DIR": str(data_dir / "data"),
            "BQEMU_GRPC_PORT": "0",
            "BQEMU_EXIT_WITH_PARENT": "1",  # no orphan if this process dies without atexit
        }
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                ["bash", str(SCRIPT), "serve", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        emulator = Emulator(f"http://127.0.0.1:{port}", process, data_dir, log_path)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and process.poll() is None:
            if _healthy(emulator.url):
                return emulator
            time.sleep(0.2)
        last = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
        emulator.stop()
    raise TransientError(f"BigQuery emulator did not start; last log:\n{last}", code="bqemu")


_shared: Emulator | None = None
_shared_lock = threading.Lock()


def shared() -> Emulator:
    """One emulator per process, started on first use and stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.process.poll() is not None:
            _shared = start()
            atexit.register(_shared.stop)
        return _shared
