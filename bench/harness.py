"""What every end-to-end figure shares: the loopback sandbox, fresh homes, measured commands.

Each command runs under a tiny Python wrapper that reads ``RUSAGE_CHILDREN`` after the child
exits, so every peak-RSS figure belongs to one process tree and nothing else; each home is a
fresh ``LORCHESTRA_HOME`` in a temporary directory with the project's ``dagster.yaml``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
CLI = [str(BIN / "lorchestra"), "pipeline", "run", "pipeline.daily_all", "--json"]
DAGSTER = [str(BIN / "dagster"), "job", "execute", "-m", "lorchestra_dagster.definitions"]
DAGSTER += ["-j", "daily_all"]
TIMEOUT_S = 12 * 3600  # P7 at 1M raw objects runs for hours on 2 cores
TABLES = ["raw.raw_objects", "canonical.canonical_objects", "derived.observations"]

# Runs argv[3:] with stdout/stderr to files; prints wall seconds, exit code and the peak RSS of
# the child's process tree (ru_maxrss is KiB on Linux). Started fresh for every command.
WRAPPER = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
with open(sys.argv[1], "wb") as out, open(sys.argv[2], "wb") as err:
    rc = subprocess.run(sys.argv[3:], stdout=out, stderr=err).returncode
wall = time.perf_counter() - t0
kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": rc, "wall_s": wall, "peak_rss_bytes": kib * 1024}))
"""


class RunFailed(RuntimeError):
    """A measured command exited non-zero; carries its stderr tail for the report."""


def machine() -> dict[str, Any]:
    """What the ratios were measured on; the load average says how shared the cores were."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    model = ""
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    git = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "total_memory_bytes": pages,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "git_commit": git.stdout.strip() or None,
    }


@contextmanager
def sandbox(clients: int, latency_s: float = 0.0) -> Iterator[tuple[dict[str, str], float]]:
    """The loopback sandbox over a generated practice; yields its env and generation seconds.

    ``latency_s`` delays every data request, as a vendor across the internet would (P6)."""
    from lorchestra_dagster.sources.sandbox.generate import generate
    from lorchestra_dagster.sources.sandbox.server import sandbox_env, serve_in_thread

    t0 = time.perf_counter()
    practice = generate(clients, 7, catalog_dir=ROOT / "jobs")  # seed 7, as `make demo`
    generated_s = time.perf_counter() - t0
    with serve_in_thread(practice, latency_s=latency_s) as handle:
        yield {"LORCHESTRA_SANDBOX_URL": handle.url, **sandbox_env()}, generated_s


@contextmanager
def fresh_home(tmp: Path, label: str) -> Iterator[Path]:
    """An empty LORCHESTRA_HOME with the project's dagster.yaml in its DAGSTER_HOME."""
    home = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=tmp))
    (home / "dagster").mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def measure(cmd: list[str], home: Path, sandbox_vars: dict[str, str]) -> dict[str, Any]:
    """Run ``cmd`` under the wrapper on ``home``; wall seconds, peak RSS and its stdout."""
    env = {
        **os.environ,
        **sandbox_vars,
        "LORCHESTRA_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "LORCHESTRA_JOBS_DIR": str(ROOT / "jobs"),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "NO_GCE_CHECK": "true",
    }
    out, err = home.parent / f"{home.name}.out", home.parent / f"{home.name}.err"
    wrapper = [sys.executable, "-c", WRAPPER, str(out), str(err), *cmd]
    proc = subprocess.Popen(
        wrapper, cwd=ROOT, env=env, stdout=subprocess.PIPE, start_new_session=True, text=True
    )
    try:
        stdout, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # only the group this call started
        proc.wait()
        raise RunFailed(f"timed out after {TIMEOUT_S}s: {' '.join(cmd)}") from None
    stats = json.loads(stdout)
    if stats["rc"] != 0:
        # A failed pipeline exits 1 with its root causes in the JSON result on stdout and
        # nothing on stderr: report both, or the figure says only "exit 1".
        tail = err.read_text(errors="replace")[-3000:]
        raise RunFailed(
            f"exit {stats['rc']}: {' '.join(cmd)}\n--- stderr tail ---\n{tail}"
            f"\n--- failures ---\n{_failures(out.read_text(errors='replace'))}"
        )
    stats["stdout"] = out.read_text(errors="replace")
    # How shared the 2 cores were while this command ran: ratios of runs at different
    # loads are read with this beside them.
    stats["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return stats


def _failures(stdout: str) -> str:
    """The failures of a ``--json`` result (job ids, steps, root causes), else stdout's tail."""
    try:
        result = json.loads(stdout)
    except ValueError:
        return stdout[-3000:]
    if not isinstance(result, dict):
        return stdout[-3000:]
    return json.dumps(result.get("failures"))[:3000]


def cli_run(
    home: Path, sandbox_vars: dict[str, str], cmd: list[str] | None = None
) -> dict[str, Any]:
    """One ``lorchestra pipeline run --json``: wall, peak RSS and the PipelineResult's figures."""
    stats = measure(cmd or CLI, home, sandbox_vars)
    result = json.loads(stats.pop("stdout"))
    if result["status"] != "succeeded":
        failures = json.dumps(result["failures"])[:3000]
        raise RunFailed(f"{result.get('pipeline_id', 'pipeline')} {result['status']}: {failures}")
    statuses: dict[str, int] = {}
    for job in result["jobs"]:
        statuses[job["status"]] = statuses.get(job["status"], 0) + 1
    return {
        **stats,
        "duration_s": result["duration_s"],
        "rows_written": result["rows_written"],
        "jobs": statuses,
        "jobs_writing": sum(1 for j in result["jobs"] if j["rows_written"]),
        # Seconds per job: what explains a figure that grows faster than its data.
        "job_seconds": {j["job_id"]: round(j["duration_s"], 2) for j in result["jobs"]},
        "stage_seconds": stage_spans(result["jobs"]),
        # Which jobs a rerun did not skip, and why: what to look at when a no-op run is slow.
        "not_skipped": {
            j["job_id"]: j.get("reason") for j in result["jobs"] if j["status"] != "skipped"
        }
        if statuses.get("skipped")
        else {},
    }


def stage_spans(jobs: list[dict[str, Any]]) -> dict[str, float]:
    """Per stage: first job's start to last job's end (the run's start-up and the other
    stages left out), from each JobSummary's ``started_at`` and ``duration_s``."""
    import datetime as dt

    spans: dict[str, list[float]] = {}
    for j in jobs:
        if not j.get("started_at"):
            continue
        start = dt.datetime.fromisoformat(j["started_at"]).timestamp()
        lo_hi = spans.setdefault(j["stage"], [start, start + j["duration_s"]])
        lo_hi[0], lo_hi[1] = min(lo_hi[0], start), max(lo_hi[1], start + j["duration_s"])
    return {stage: round(hi - lo, 3) for stage, (lo, hi) in spans.items()}


def warehouse_rows(home: Path) -> dict[str, int | None]:
    """Row counts of the main tables: evidence that two homes hold the same data."""
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        counts: dict[str, int | None] = {}
        for table in TABLES:
            try:
                counts[table] = con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            except duckdb.Error:
                counts[table] = None
        return counts
    finally:
        con.close()


def warm_up() -> None:
    """Import the code location once so neither side of a comparison pays for cold caches."""
    cmd = [sys.executable, "-c", "import lorchestra_dagster.definitions"]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)


def rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}
