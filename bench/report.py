"""The "last results" table of bench/README.md, refreshed by bench/run.py.

A separate module so run.py stays about measuring. Rows of figures not measured this time
(``--only``) are kept as they were, so the table always shows the latest figure of each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

START, END = "<!-- results:start -->", "<!-- results:end -->"
HEADER = [
    "| figure | value | goal | ok | clients | measured at | machine |",
    "|---|---|---|---|---|---|---|",
]

INTRO = """# Benchmarks

Scripts that print JSON figures; nothing here is asserted by the tests. `make bench` runs
`bench/run.py` (end to end, below), then `bench_upsert.py` and `bench_generator.py`.

## bench/run.py: daily_all end to end

Every figure is a ratio against a baseline measured in the same run on the same machine,
each command a fresh subprocess on a fresh `LORCHESTRA_HOME` (temporary directory, with
`DAGSTER_HOME=$LORCHESTRA_HOME/dagster` holding a copy of `dagster.yaml`) against the
loopback sandbox (`generate(clients, seed=7)`). Peak RSS is `ru_maxrss` of
`RUSAGE_CHILDREN` read by a wrapper process started for that one command.

| figure | what it means | goal |
|---|---|---|
| `dagster_vs_cli` | wall seconds of the first `daily_all` through Dagster's default \
(multiprocess) executor, `dagster job execute -m lorchestra_dagster.definitions -j daily_all`, \
divided by the same through `lorchestra pipeline run pipeline.daily_all --json` (an \
in-process Dagster run); both homes must end with the same row counts | <= 1.5 |
| `noop_rerun` | a second CLI `daily_all` on the same home over unchanged sources, divided \
by the first, using each run's own `duration_s` (the wall-clock ratio, which adds process \
start-up, is reported as `wall_ratio`); the second run must write 0 rows | <= 0.05, 0 rows |
| `memory` | peak RSS of a CLI `daily_all` (fresh home) at 3,000 clients divided by the \
same at 300 | <= 1.5 |

```bash
.venv/bin/python bench/run.py                      # all three, 300 / 3,000 clients
.venv/bin/python bench/run.py --quick              # 30 / 300 clients, a smoke test
.venv/bin/python bench/run.py --only noop_rerun --clients-small 300
```

The full document (raw seconds, bytes, job statuses) goes to stdout and `bench/results.json`.

## Last results
"""


def _row(name: str, fig: dict[str, Any], doc: dict[str, Any]) -> str:
    m = doc["machine"]
    clients = doc["clients"]
    who = f"{clients['small']}" if name != "memory" else f"{clients['small']}/{clients['large']}"
    who += " (quick)" if clients["quick"] else ""
    mem_gib = m["total_memory_bytes"] / 2**30
    where = f"{m['cpu_count']} CPU, {mem_gib:.0f} GiB, Python {m['python']}"
    ok = "yes" if fig["ok"] else "**no**"
    return (
        f"| `{name}` | {fig['value']} | {fig['goal']} | {ok} | {who} | "
        f"{doc['started_at']} | {where} |"
    )


def update_readme(path: Path, doc: dict[str, Any]) -> None:
    """Write the intro if the file is new, then replace this run's rows of the table."""
    text = path.read_text() if path.exists() else INTRO + f"\n{START}\n{END}\n"
    if START not in text:
        text += f"\n## Last results\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    body, tail = rest.split(END, 1)
    rows: dict[str, str] = {}
    for line in body.splitlines():
        if line.startswith("| `"):
            rows[line.split("`")[1]] = line
    for name, fig in doc["figures"].items():
        rows[name] = _row(name, fig, doc)
    for name, error in doc.get("failures", {}).items():
        first = error.splitlines()[0].replace("|", "\\|")[:120]
        rows[name] = f"| `{name}` | failed | {first} | **no** | | {doc['started_at']} | |"
    table = "\n".join([*HEADER, *rows.values()]) if rows else ""
    path.write_text(f"{head}{START}\n{table}\n{END}{tail}")
