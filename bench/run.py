"""End-to-end figures of ``daily_all``, measured side by side in one run, as one JSON document.

Micro-benchmarks (bench_upsert.py, bench_generator.py) cannot show what a user waits for: the
whole pipeline through Dagster against the loopback sandbox. This script runs real
subprocesses (the ``lorchestra`` CLI and ``dagster job execute``), each on a fresh
``LORCHESTRA_HOME`` in a temporary directory, and compares each figure with its baseline in
the same run, so machine speed cancels out of every ratio:

- ``dagster_vs_cli``: Dagster's default (multiprocess) executor vs the CLI, same sandbox.
- ``noop_rerun``: a second CLI run over unchanged sources vs the first, same home.
- ``memory``: peak RSS of the CLI at the large client count vs the small one.

Each command runs under a tiny Python wrapper that reads ``RUSAGE_CHILDREN`` after the child
exits, so every peak-RSS figure belongs to one process tree and nothing else. Prints the JSON
to stdout, writes it to bench/results.json and refreshes the table in bench/README.md.

    .venv/bin/python bench/run.py [--quick] [--only NAME ...] [--clients-small 300]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
CLI = [str(BIN / "lorchestra"), "pipeline", "run", "pipeline.daily_all", "--json"]
DAGSTER = [str(BIN / "dagster"), "job", "execute", "-m", "lorchestra_dagster.definitions"]
DAGSTER += ["-j", "daily_all"]
TIMEOUT_S = 3 * 3600
TABLES = ["raw.raw_objects", "canonical.canonical_objects", "derived.observations"]

sys.path.insert(0, str(BENCH))
from report import update_readme  # noqa: E402

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
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "total_memory_bytes": pages,
    }


@contextmanager
def sandbox(clients: int) -> Iterator[tuple[dict[str, str], float]]:
    """The loopback sandbox over a generated practice; yields its env and generation seconds."""
    from lorchestra_dagster.sources.sandbox.generate import generate
    from lorchestra_dagster.sources.sandbox.server import sandbox_env, serve_in_thread

    t0 = time.perf_counter()
    practice = generate(clients, 7, catalog_dir=ROOT / "jobs")  # seed 7, as `make demo`
    generated_s = time.perf_counter() - t0
    with serve_in_thread(practice) as handle:
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
        tail = err.read_text(errors="replace")[-3000:]
        raise RunFailed(f"exit {stats['rc']}: {' '.join(cmd)}\n--- stderr tail ---\n{tail}")
    stats["stdout"] = out.read_text(errors="replace")
    return stats


def cli_run(home: Path, sandbox_vars: dict[str, str]) -> dict[str, Any]:
    """One ``lorchestra pipeline run --json``: wall, peak RSS and the PipelineResult's figures."""
    stats = measure(CLI, home, sandbox_vars)
    result = json.loads(stats.pop("stdout"))
    if result["status"] != "succeeded":
        raise RunFailed(f"daily_all {result['status']}: {json.dumps(result['failures'])[:3000]}")
    statuses: dict[str, int] = {}
    for job in result["jobs"]:
        statuses[job["status"]] = statuses.get(job["status"], 0) + 1
    return {
        **stats,
        "duration_s": result["duration_s"],
        "rows_written": result["rows_written"],
        "jobs": statuses,
        "jobs_writing": sum(1 for j in result["jobs"] if j["rows_written"]),
        # Which jobs a rerun did not skip, and why: what to look at when a no-op run is slow.
        "not_skipped": {
            j["job_id"]: j.get("reason") for j in result["jobs"] if j["status"] != "skipped"
        }
        if statuses.get("skipped")
        else {},
    }


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


def dagster_vs_cli(tmp: Path, small: int, _large: int) -> dict[str, Any]:
    with sandbox(small) as (env, gen_s):
        warm_up()
        with fresh_home(tmp, "cli") as home:
            cli = cli_run(home, env)
            cli["warehouse_rows"] = warehouse_rows(home)
        with fresh_home(tmp, "dagster") as home:
            dag = measure(DAGSTER, home, env)
            dag.pop("stdout")
            dag["warehouse_rows"] = warehouse_rows(home)
    ratio = dag["wall_s"] / cli["wall_s"]
    return {
        "value": round(ratio, 3),
        "goal": "<= 1.5 (dagster_s / cli_s, wall clock)",
        "ok": ratio <= 1.5 and dag["warehouse_rows"] == cli["warehouse_rows"],
        "measured": {
            "clients": small,
            "sandbox_generate_s": round(gen_s, 3),
            "cli": rounded(cli),
            "dagster_default_executor": rounded(dag),
            "same_rows": dag["warehouse_rows"] == cli["warehouse_rows"],
        },
        "baseline": "the CLI's first daily_all (in-process Dagster run) on the same sandbox",
        "command": f"bench/run.py --only dagster_vs_cli --clients-small {small}; "
        "compares `dagster job execute -m lorchestra_dagster.definitions -j daily_all` "
        "with `lorchestra pipeline run pipeline.daily_all --json`, each on a fresh home",
    }


def noop_rerun(tmp: Path, small: int, _large: int) -> dict[str, Any]:
    with sandbox(small) as (env, gen_s), fresh_home(tmp, "rerun") as home:
        warm_up()
        first = cli_run(home, env)
        second = cli_run(home, env)
    ratio = second["duration_s"] / first["duration_s"]
    return {
        "value": round(ratio, 4),
        "goal": "<= 0.05 (second/first, the runs' own duration_s) and 0 rows written",
        "ok": ratio <= 0.05 and second["rows_written"] == 0,
        "measured": {
            "clients": small,
            "sandbox_generate_s": round(gen_s, 3),
            "first": rounded(first),
            "second": rounded(second),
            "wall_ratio": round(second["wall_s"] / first["wall_s"], 4),
            "second_rows_written": second["rows_written"],
        },
        "baseline": "the first daily_all on the same home; the ratio uses the PipelineResult's "
        "duration_s (the Dagster run alone); wall_ratio adds process start-up and imports",
        "command": f"bench/run.py --only noop_rerun --clients-small {small}; runs "
        "`lorchestra pipeline run pipeline.daily_all --json` twice on one home",
    }


def memory(tmp: Path, small: int, large: int) -> dict[str, Any]:
    runs: dict[str, dict[str, Any]] = {}
    for clients in (small, large):
        with sandbox(clients) as (env, gen_s), fresh_home(tmp, f"mem{clients}") as home:
            warm_up()
            runs[str(clients)] = rounded({**cli_run(home, env), "sandbox_generate_s": gen_s})
    ratio = runs[str(large)]["peak_rss_bytes"] / runs[str(small)]["peak_rss_bytes"]
    return {
        "value": round(ratio, 3),
        "goal": f"<= 1.5 (peak RSS at {large} clients / at {small})",
        "ok": ratio <= 1.5,
        "measured": {"by_clients": runs},
        "baseline": f"peak RSS of the same CLI daily_all at {small} clients (fresh home)",
        "command": f"bench/run.py --only memory --clients-small {small} --clients-large {large}; "
        "ru_maxrss of RUSAGE_CHILDREN in a fresh wrapper per run",
    }


FIGURES: dict[str, Callable[[Path, int, int], dict[str, Any]]] = {
    "dagster_vs_cli": dagster_vs_cli,
    "noop_rerun": noop_rerun,
    "memory": memory,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(FIGURES), default=[])
    parser.add_argument("--clients-small", type=int, default=300)
    parser.add_argument("--clients-large", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="30/300 clients: a smoke test")
    args = parser.parse_args()
    small, large = (30, 300) if args.quick else (args.clients_small, args.clients_large)
    doc: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "clients": {"small": small, "large": large, "quick": args.quick},
        "figures": {},
        "failures": {},
        "elapsed_s": {},
    }
    with tempfile.TemporaryDirectory(prefix="lorchestra-bench-") as tmp:
        for name in args.only or list(FIGURES):
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                doc["figures"][name] = FIGURES[name](Path(tmp), small, large)
            except RunFailed as exc:
                doc["failures"][name] = str(exc)
                print(f"[bench] {name} FAILED:\n{exc}", file=sys.stderr, flush=True)
            doc["elapsed_s"][name] = round(time.perf_counter() - t0, 1)
            print(f"[bench] {name}: {doc['elapsed_s'][name]}s", file=sys.stderr, flush=True)
    text = json.dumps(doc, indent=2)
    (BENCH / "results.json").write_text(text + "\n")
    update_readme(BENCH / "README.md", doc)
    print(text)
    sys.exit(1 if doc["failures"] else 0)


if __name__ == "__main__":
    main()
