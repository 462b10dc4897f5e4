"""The end-to-end figures: whole pipelines through the CLI or Dagster against the sandbox.

P1 no-op day, P3 memory, P4 Dagster's default executor vs the CLI, P6 ingest workers at
a vendor's latency, P7 scale. Each function takes the parsed options and a scratch folder
and returns a figure shaped by :mod:`report`; the baseline of every ratio is measured in
the same call on the same machine.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from harness import (
    BIN,
    DAGSTER,
    ROOT,
    cli_run,
    fresh_home,
    measure,
    rounded,
    sandbox,
    warehouse_rows,
    warm_up,
)
from report import check, figure

INGEST = [str(BIN / "lorchestra"), "pipeline", "run", "pipeline.ingest", "--json"]


def _slowest(run: dict[str, Any], n: int = 3) -> str:
    top = sorted(run["job_seconds"].items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{job} {s:.1f} s" for job, s in top)


def p1_noop_day(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    clients = args.clients_small
    with sandbox(clients) as (env, gen_s), fresh_home(tmp, "p1") as home:
        warm_up()
        first = cli_run(home, env)
        second = cli_run(home, env)
    ratio = second["duration_s"] / first["duration_s"]
    return figure(
        "P1",
        "no-op day",
        [
            check("second/first daily_all (runs' duration_s)", round(ratio, 4), "<=", 0.05),
            check("rows written by the second run", second["rows_written"], "==", 0),
        ],
        baseline="the first daily_all on the same home and sandbox",
        size=f"{clients} clients",
        command=f"make bench ONLY=P1 CLIENTS_SMALL={clients}",
        measured={
            "clients": clients,
            "sandbox_generate_s": round(gen_s, 3),
            "first": rounded(first),
            "second": rounded(second),
            "wall_ratio": round(second["wall_s"] / first["wall_s"], 4),
        },
        why_missed=f"jobs the rerun did not skip: {sorted(second['not_skipped'])}; the "
        f"slowest of them: {_slowest(second)}. Closing it: make those jobs' inputs "
        "fingerprintable (defs/fingerprints.py) so an unchanged day skips them.",
    )


def p3_memory(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    small, large = args.clients_small, args.clients_large
    runs: dict[int, dict[str, Any]] = {}
    for clients in (small, large):
        with sandbox(clients) as (env, gen_s), fresh_home(tmp, f"p3-{clients}") as home:
            warm_up()
            runs[clients] = rounded({**cli_run(home, env), "sandbox_generate_s": gen_s})
    ratio = runs[large]["peak_rss_bytes"] / runs[small]["peak_rss_bytes"]
    mb = {c: round(r["peak_rss_bytes"] / 2**20) for c, r in runs.items()}
    return figure(
        "P3",
        "memory",
        [check(f"peak RSS at {large} / at {small} clients", round(ratio, 3), "<=", 1.5)],
        baseline=f"peak RSS of the same CLI daily_all at {small} clients (fresh home)",
        size=f"{small} and {large} clients",
        command=f"make bench ONLY=P3 CLIENTS_SMALL={small} CLIENTS_LARGE={large}",
        measured={"by_clients": {str(c): r for c, r in runs.items()}, "peak_mb": mb},
        why_missed=f"peak {mb[large]} MB vs {mb[small]} MB. bench/memprofile.py "
        f"--clients {large} names the jobs whose peak grows with clients (last known: "
        "render_measures and render_client_markdown holding every client's output in one "
        "result, over the heap kept after canonize and formation); paging them per client "
        "batch and returning freed heap after each job closes it (branch mem).",
    )


def p4_dagster_vs_cli(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    clients = args.clients_small
    with sandbox(clients) as (env, gen_s):
        warm_up()
        with fresh_home(tmp, "p4-cli") as home:
            cli = cli_run(home, env)
            cli["warehouse_rows"] = warehouse_rows(home)
        with fresh_home(tmp, "p4-dagster") as home:
            dag = measure(DAGSTER, home, env)
            dag.pop("stdout")
            dag["warehouse_rows"] = warehouse_rows(home)
    ratio = dag["wall_s"] / cli["wall_s"]
    same = dag["warehouse_rows"] == cli["warehouse_rows"]
    return figure(
        "P4",
        "Dagster default executor vs CLI",
        [
            check("dagster job execute / lorchestra pipeline run", round(ratio, 3), "<=", 1.5),
            check("same warehouse row counts (1 = yes)", int(same), "==", 1),
        ],
        baseline="the CLI's daily_all (one in-process Dagster run) on the same sandbox",
        size=f"{clients} clients",
        command=f"make bench ONLY=P4 CLIENTS_SMALL={clients}",
        measured={
            "clients": clients,
            "sandbox_generate_s": round(gen_s, 3),
            "cli": rounded(cli),
            "dagster_default_executor": rounded(dag),
        },
        why_missed="the multiprocess executor pays a process start per op; check that "
        "daily_all still compiles to one op per run (docs/architecture.md) and that both "
        "homes hold the same rows.",
    )


def p6_ingest_workers(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    clients, latency_s = args.p6_clients, args.p6_latency_ms / 1000
    runs: dict[int, dict[str, Any]] = {}
    with sandbox(clients, latency_s=latency_s) as (env, gen_s):
        warm_up()
        for workers in (1, 2):
            with fresh_home(tmp, f"p6-{workers}") as home:
                cmd = [*INGEST, "--max-workers", str(workers)]
                runs[workers] = rounded(cli_run(home, env, cmd))
                runs[workers]["warehouse_rows"] = warehouse_rows(home)
    speedup = runs[1]["stage_seconds"]["ingest"] / runs[2]["stage_seconds"]["ingest"]
    run_speedup = runs[1]["duration_s"] / runs[2]["duration_s"]
    one = runs[1]["job_seconds"]
    sums = {w: sum(r["job_seconds"].values()) for w, r in runs.items()}
    gaps = {w: r["stage_seconds"]["ingest"] - sums[w] / w for w, r in runs.items()}
    # With 2 workers a stage cannot finish before its longest job: the bound on speed-up.
    bound = sum(one.values()) / max(max(one.values()), sum(one.values()) / 2)
    return figure(
        "P6",
        "ingest workers at vendor latency",
        [check("ingest stage, 1 worker / 2 workers (speed-up)", round(speedup, 3), ">=", 1.7)],
        baseline="the same ingest stage with --max-workers 1, same sandbox and latency; the "
        "stage is timed from its first job's start to its last job's end (run start-up apart, "
        "reported as whole_run_speedup)",
        size=f"{clients} clients, {args.p6_latency_ms:g} ms per request",
        command=f"make bench ONLY=P6 P6_CLIENTS={clients} P6_LATENCY_MS={args.p6_latency_ms:g}",
        measured={
            "clients": clients,
            "latency_ms": args.p6_latency_ms,
            "sandbox_generate_s": round(gen_s, 3),
            "workers_1": runs[1],
            "workers_2": runs[2],
            "speedup_bound_longest_job": round(bound, 3),
            "whole_run_speedup": round(run_speedup, 3),
            "job_seconds_sum": {str(w): round(v, 2) for w, v in sums.items()},
        },
        why_missed=f"the longest ingest jobs at 1 worker: {_slowest(runs[1])}; the jobs' own "
        f"seconds add up to {sums[1]:.1f} s at 1 worker and {sums[2]:.1f} s at 2 (each job "
        "slower when two share one process: the work between network waits is CPU under one "
        "GIL, on 2 shared cores), and "
        f"{gaps[1]:.1f} s of the 1-worker stage lies between jobs (fingerprints, checks, "
        "Dagster events). Closing it: less CPU per request (the discovery-built Google "
        "client assembles every request in Python), per-job bookkeeping off the workers, "
        "and the longest stream split further (Gmail's fetch_concurrency or batch endpoint).",
    )


def _clients_for(raw: int) -> tuple[int, float]:
    """Clients whose practice yields about ``raw`` vendor objects (the raw rows ingest
    writes), from a 200-client sample of the same generator and seed."""
    from lorchestra_dagster.sources.sandbox.generate import generate

    sample = 200
    per_client = sum(generate(sample, 7, catalog_dir=ROOT / "jobs").counts().values()) / sample
    return max(1, math.ceil(raw / per_client)), per_client


def p7_scale(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    large_raw = args.p7_raw
    small_raw = large_raw // 10
    runs: dict[str, dict[str, Any]] = {}
    for label, raw in (("small", small_raw), ("large", large_raw)):
        clients, per_client = _clients_for(raw)
        with sandbox(clients) as (env, gen_s), fresh_home(tmp, f"p7-{label}") as home:
            warm_up()
            run = cli_run(home, env)
            run["warehouse_rows"] = warehouse_rows(home)
        runs[label] = rounded(
            {**run, "clients": clients, "target_raw": raw, "sandbox_generate_s": gen_s}
        )
    s, big = runs["small"], runs["large"]
    time_x = big["duration_s"] / s["duration_s"]
    mem_x = big["peak_rss_bytes"] / s["peak_rss_bytes"]
    got = big["warehouse_rows"]["raw.raw_objects"], s["warehouse_rows"]["raw.raw_objects"]
    growth = {
        j: round(big["job_seconds"][j] / max(s["job_seconds"].get(j, 0), 0.01), 1)
        for j in big["job_seconds"]
    }
    worst = sorted(growth.items(), key=lambda kv: -big["job_seconds"][kv[0]])[:3]
    full = "" if large_raw == 1_000_000 else f" (goal size is 1M; this run: {large_raw:,})"
    return figure(
        "P7",
        "scale",
        [
            check(
                f"daily_all time at {large_raw:,} / {small_raw:,} raw", round(time_x, 3), "<=", 11
            ),  # fmt: skip
            check("peak RSS at the large / the small size", round(mem_x, 3), "<=", 1.5),
        ],
        baseline=f"the same daily_all over {small_raw:,} raw objects (a tenth), fresh home",
        size=f"{got[0]:,} vs {got[1]:,} raw objects ({big['clients']:,} vs {s['clients']:,} "
        f"clients){full}",
        command=f"make bench ONLY=P7 P7_RAW={large_raw}",
        measured={"small": s, "large": big, "per_client_objects": round(per_client, 2)},
        why_missed=f"time x{time_x:.2f}, memory x{mem_x:.2f} for x{got[0] / got[1]:.1f} the raw "
        f"rows; the largest jobs at the large size and their growth: "
        f"{', '.join(f'{j} x{g}' for j, g in worst)} ({worst[0][0]} is "
        f"{big['job_seconds'][worst[0][0]] / big['duration_s']:.0%} of the large run's "
        f"seconds); load average {s['load_average_end']} after the small run, "
        f"{big['load_average_end']} after the large one (2 cores shared). Closing it: "
        f"make {worst[0][0]} linear (per-step seconds: bench/memprofile.py --clients "
        f"{big['clients']}), page jobs by keyset with bounded batches (memory), and keep "
        "reads incremental so time grows with the rows, not faster.",
    )
