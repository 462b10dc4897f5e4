"""Every performance figure of issue 14 (P1..P7), measured side by side in one run.

Each figure is a ratio against a baseline measured in the same run on the same machine, so
machine speed and load cancel out of it. One process tree: this script starts every
measured command (the ``lorchestra`` CLI, ``dagster job execute``, bench_upsert.py, Node)
as its own child. Prints one JSON document (machine, options, every figure with baseline,
ratio, goal, met, a note on a miss, the command that reproduces it), writes it to
bench/results.json and refreshes the table in bench/README.md.

    make bench                       # everything at the goals' sizes (P7: 1M raw objects)
    make bench ONLY=P5,P6            # a subset
    .venv/bin/python bench/run.py --only P7 --p7-raw 20000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figure_canonize import p5_canonize
from figures_pipeline import (
    p1_noop_day,
    p3_memory,
    p4_dagster_vs_cli,
    p6_ingest_workers,
    p7_scale,
)
from harness import BENCH, ROOT, machine
from report import check, document, failed, figure, update_readme


def p2_write_path(args: argparse.Namespace, _tmp: Path) -> dict[str, Any]:
    """bench_upsert.py in its own process: plan + submit vs a plain Arrow upsert."""
    cmd = [sys.executable, str(BENCH / "bench_upsert.py"), "--rows", str(args.p2_rows)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"bench_upsert.py exit {proc.returncode}: {proc.stderr[-3000:]}")
    m = json.loads(proc.stdout)
    return figure(
        "P2",
        "write path",
        [
            check(
                "plan.build + submit / INSERT ON CONFLICT from Arrow, first write",
                m["storacle_vs_plain"],
                ">=",
                0.5,
            ),  # fmt: skip
            check("the same, rerun of unchanged rows", m["rerun_vs_plain_rerun"], ">=", 1.0),
        ],
        baseline="plain DuckDB INSERT ... ON CONFLICT DO UPDATE from Arrow, same rows and "
        "batches, in the same process",
        size=f"{m['rows']:,} raw rows, {m['batch_size']:,} a plan",
        command=f"make bench ONLY=P2 P2_ROWS={args.p2_rows}",
        measured=m,
        why_missed=f"of storacle's first write, {m['first_plan_s']} s is building the plan "
        f"(its id: sha256 over the orjson bytes of the ops) and {m['first_submit_s']} s the "
        f"submit; on the rerun {m['rerun_plan_s']} s plan, {m['rerun_submit_s']} s submit "
        "(per batch: the rows to Arrow, then the counting join, which scans the target's key "
        "and compared columns). Closing it: a per-row content hash column compared instead "
        "of the columns (a hidden column in every upserted table, docs/architecture.md).",
    )


# id -> (title, function); the order is the order of the run and of the report.
FIGURES: dict[str, tuple[str, Callable[[argparse.Namespace, Path], dict[str, Any]]]] = {
    "P1": ("no-op day", p1_noop_day),
    "P2": ("write path", p2_write_path),
    "P3": ("memory", p3_memory),
    "P4": ("Dagster default executor vs CLI", p4_dagster_vs_cli),
    "P5": ("canonize", p5_canonize),
    "P6": ("ingest workers at vendor latency", p6_ingest_workers),
    "P7": ("scale", p7_scale),
}


def selected(only: list[str]) -> list[str]:
    """Figure ids from ``--only`` values (``P5,P6`` or repeated), in run order.

    Raises:
        SystemExit: an unknown id, with the known ones.
    """
    wanted = {part.strip().upper() for value in only for part in value.split(",") if part.strip()}
    unknown = sorted(wanted - set(FIGURES))
    if unknown:
        raise SystemExit(f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(FIGURES)}")
    return [fid for fid in FIGURES if not wanted or fid in wanted]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", action="append", default=[], help="figure ids, e.g. P5,P6")
    p.add_argument("--quick", action="store_true", help="smoke-test sizes for every figure")
    p.add_argument("--clients-small", type=int, default=300, help="P1, P3, P4")
    p.add_argument("--clients-large", type=int, default=3000, help="P3")
    p.add_argument("--p2-rows", type=int, default=100_000)
    p.add_argument("--p5-docs", type=int, default=10_000)
    p.add_argument("--p5-python-docs", type=int, default=1_000, help="jsonata-python's share")
    p.add_argument("--p6-clients", type=int, default=100)
    p.add_argument("--p6-latency-ms", type=float, default=50.0)
    p.add_argument("--p7-raw", type=int, default=1_000_000, help="raw objects of the large run")
    args = p.parse_args(argv)
    if args.quick:
        args.clients_small, args.clients_large = 30, 300
        args.p2_rows, args.p5_docs, args.p5_python_docs = 10_000, 1_000, 200
        args.p6_clients, args.p7_raw = 10, 20_000
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    ids = selected(args.only)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    info = machine()
    figures, elapsed = [], {}
    with tempfile.TemporaryDirectory(prefix="lorchestra-bench-") as tmp:
        for fid in ids:
            title, fn = FIGURES[fid]
            print(f"[bench] {fid} {title} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            scratch = Path(tmp) / fid
            scratch.mkdir()
            try:
                figures.append(fn(args, scratch))
            except Exception as exc:  # noqa: BLE001 - one broken figure is reported; the others run
                detail = "".join(traceback.format_exception(exc))
                figures.append(failed(fid, title, f"{type(exc).__name__}: {exc}\n{detail}",
                                      f"make bench ONLY={fid}"))  # fmt: skip
                print(f"[bench] {fid} FAILED:\n{detail}", file=sys.stderr, flush=True)
            elapsed[fid] = round(time.perf_counter() - t0, 1)
            print(f"[bench] {fid}: {elapsed[fid]} s", file=sys.stderr, flush=True)
    options = {k: v for k, v in vars(args).items() if k != "only"} | {"figures": ids}
    doc = document(started, info, options, figures, elapsed)
    text = json.dumps(doc, indent=2, default=str)
    (BENCH / "results.json").write_text(text + "\n")
    update_readme(BENCH / "README.md", doc)
    print(text)
    print("\n".join(doc["summary"]), file=sys.stderr)
    sys.exit(0 if all(f["checks"] for f in figures) else 1)  # 1: a figure broke


if __name__ == "__main__":
    main()
