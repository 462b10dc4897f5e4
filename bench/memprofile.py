"""Per-job (and per-step) memory and time of ``daily_all``: which jobs drive peak RSS.

Same set-up as bench/run.py's ``memory`` figure: the parent generates the sandbox practice
(seed 7) and serves it in a thread; the pipeline runs in a fresh child process on a fresh
``LORCHESTRA_HOME`` (so the sandbox's own memory is not counted), in-process through
``launch("pipeline.daily_all", kind="pipeline", max_workers=...)``.

Inside the child, local monkeypatches (nothing in the package is edited) mark phase
boundaries: every engine step (``executor.run_step_with_timeout``), the fingerprinting and
the asset checks the catalog op runs around each job. At each boundary the exact peak RSS of
the phase that just ended is read from ``VmHWM`` and the high-water mark is reset
(``/proc/self/clear_refs`` = 5), so short spikes are not lost between samples. A sampler
thread also records VmRSS every 0.2 s. At each job's end (progress callback) it records RSS,
glibc heap (mallinfo2), DuckDB's own accounting (``duckdb_memory()``) and, with
``--tracemalloc``, the peak of Python allocations per phase.

    .venv/bin/python bench/memprofile.py --clients 300 --out /tmp/mp300.json
    .venv/bin/python bench/memprofile.py --clients 300 \
        --duckdb-memory-limit 256MB --duckdb-threads 2
    .venv/bin/python bench/memprofile.py --compare /tmp/mp300.json /tmp/mp3000.json
    .venv/bin/python bench/memprofile.py --breakdown /tmp/mp3000.json  # RSS by kind per job
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


# ----------------------------------------------------------------------------- /proc helpers


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        m = re.search(rf"^{field}:\s+(\d+) kB", fh.read(), re.M)
    return int(m.group(1)) * 1024 if m else 0


def rss() -> int:
    return _status("VmRSS")


def hwm() -> int:
    return _status("VmHWM")


def reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_size_t)
        for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def mallinfo() -> dict[str, int]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        mi = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    # arena: bytes sbrk'd + mmapped arenas; uordblks in use; fordblks free but retained.
    return {"heap_total": mi.arena, "heap_in_use": mi.uordblks, "heap_free": mi.fordblks,
            "mmapped": mi.hblkhd}  # fmt: skip


def obmalloc_bytes() -> int:
    """Bytes of pymalloc arenas in use (1 MiB each, mmapped: neither glibc nor DuckDB)."""
    return obmalloc_stats()[0]


def obmalloc_stats() -> tuple[int, int]:
    """pymalloc's arenas and the bytes of its blocks in use (live small objects).

    Arenas much larger than the live blocks are fragmentation: freed objects whose
    arenas a few survivors keep from going back to the OS."""
    fd, path = tempfile.mkstemp()
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
    text = Path(path).read_text()
    os.unlink(path)
    m = re.search(r"^(\d+) arenas \* (\d+) bytes/arena", text, re.M)
    live = re.search(r"^# bytes in allocated blocks\s*=\s*([\d,]+)", text, re.M)
    return (
        int(m.group(1)) * int(m.group(2)) if m else 0,
        int(live.group(1).replace(",", "")) if live else 0,
    )


def smaps() -> dict[str, int]:
    """Resident bytes by kind of mapping: [heap], anonymous, file-backed, other.

    glibc's main arena is ``[heap]``; its thread arenas, pymalloc arenas, DuckDB's
    jemalloc and large mallocs are anonymous; shared libraries and mmapped files are
    file-backed.
    """
    out = {"heap": 0, "anon": 0, "file": 0, "other": 0}
    kind = "other"
    with open("/proc/self/smaps") as fh:
        for line in fh:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
                kind = ("heap" if name == "[heap]" else "anon" if not name
                        else "file" if name.startswith("/") else "other")  # fmt: skip
            elif first == "Rss:":
                out[kind] += int(line.split()[1]) * 1024
    return out


# ----------------------------------------------------------------------------- the child


class Recorder:
    """Phase boundaries, exact per-phase peaks (VmHWM) and a 0.2 s RSS timeline."""

    def __init__(self, trace: bool) -> None:
        self.t0 = time.monotonic()
        self.trace = trace
        self.lock = threading.Lock()
        self.label = "startup"
        self.job: str | None = None
        self.phase_started = time.monotonic()
        self.phases: list[dict[str, Any]] = []  # {label, job, t0, t1, peak, rss_end, py_peak}
        self.timeline: list[tuple[float, int, str]] = []
        self.jobs: list[dict[str, Any]] = []
        self.backends: list[Any] = []
        self.io: dict[str, dict[str, int]] = {}  # per label: request/response bytes max
        self._stop = threading.Event()
        reset_hwm()
        if trace:
            import tracemalloc

            tracemalloc.start(1)
        self.sampler = threading.Thread(target=self._sample, daemon=True, name="memprof")
        self.sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.timeline.append((round(time.monotonic() - self.t0, 2), rss(), self.label))

    def boundary(self, new_label: str, job: str | None = None) -> None:
        """Close the current phase (its exact peak) and open ``new_label``."""
        with self.lock:
            now = time.monotonic()
            rec = {
                "label": self.label,
                "job": self.job,
                "t0": round(self.phase_started - self.t0, 3),
                "t1": round(now - self.t0, 3),
                "seconds": round(now - self.phase_started, 3),
                "peak": hwm(),
                "rss_end": rss(),
            }
            if self.trace:
                import tracemalloc

                cur, peak = tracemalloc.get_traced_memory()
                rec["py_cur"], rec["py_peak"] = cur, peak
                tracemalloc.reset_peak()
            self.phases.append(rec)
            reset_hwm()
            self.label = new_label
            if job is not None:
                self.job = job
            self.phase_started = now

    def duckdb_memory(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for be in self.backends:
            con = getattr(be, "_con", None)
            if con is None:
                continue
            try:
                cur = con.cursor()
                rows = cur.execute(
                    "SELECT tag, memory_usage_bytes, temporary_storage_bytes FROM duckdb_memory()"
                ).fetchall()
                cur.close()
            except Exception as exc:  # noqa: BLE001
                out["error"] = str(exc)[:80]  # type: ignore[assignment]
                continue
            out["total"] = out.get("total", 0) + sum(r[1] for r in rows)
            out["temp"] = out.get("temp", 0) + sum(r[2] for r in rows)
            for tag, mem, _tmp in rows:
                if mem:
                    out[tag] = out.get(tag, 0) + mem
        return out

    def stop(self) -> None:
        self._stop.set()
        self.sampler.join(timeout=2)


def install_patches(rec: Recorder, mem_limit: str | None, threads: int | None) -> None:
    from lorchestra_dagster.defs import catalog_assets, fingerprints
    from lorchestra_dagster.engine import executor
    from lorchestra_dagster.storacle import client as client_mod
    from lorchestra_dagster.storacle.backends import duckdb as duck

    orig_init = duck.DuckDBBackend.__init__

    def init(self: Any, *a: Any, **kw: Any) -> None:
        orig_init(self, *a, **kw)
        rec.backends.append(self)

    duck.DuckDBBackend.__init__ = init  # type: ignore[method-assign]

    if mem_limit or threads:
        orig_conf = duck.DuckDBBackend._configure

        def configure(self: Any, con: Any) -> None:
            orig_conf(self, con)
            if mem_limit:
                con.execute(f"SET memory_limit='{mem_limit}'")
            if threads:
                con.execute(f"SET threads={int(threads)}")

        duck.DuckDBBackend._configure = configure  # type: ignore[method-assign]

    orig_step = executor.run_step_with_timeout

    def step(s: Any, params: Any, state: Any, services: Any) -> Any:
        rec.boundary(f"step:{s.step_id}", job=state.job_id)
        try:
            return orig_step(s, params, state, services)
        finally:
            rec.boundary("glue")

    executor.run_step_with_timeout = step

    orig_reads = fingerprints.Fingerprints.reads
    orig_sig = fingerprints.Fingerprints.signature

    def reads(self: Any, client: Any, job: Any) -> Any:
        rec.boundary("fingerprint", job=job.job_id)
        try:
            return orig_reads(self, client, job)
        finally:
            rec.boundary("glue")

    def signature(self: Any, client: Any, job: Any, env_sha: str, reads: Any = None) -> Any:
        rec.boundary("fingerprint", job=job.job_id)
        try:
            return orig_sig(self, client, job, env_sha, reads)
        finally:
            rec.boundary("glue")

    fingerprints.Fingerprints.reads = reads  # type: ignore[method-assign]
    fingerprints.Fingerprints.signature = signature  # type: ignore[method-assign]

    orig_checks = catalog_assets.run_checks

    def checks(*a: Any, **kw: Any) -> Any:
        rec.boundary("checks")
        try:
            return orig_checks(*a, **kw)
        finally:
            rec.boundary("glue")

    catalog_assets.run_checks = checks

    # Same behaviour as InProcessTransport.send; also counts calls and rows per phase (no
    # bytes exist in process: the request object is handed over as is).
    orig_send = client_mod.InProcessTransport.send

    def send(self: Any, request: dict[str, Any]) -> dict[str, Any]:
        response = orig_send(self, request)
        payload = (request.get("params") or {}).get("payload")
        rows = getattr(payload, "row_count", 0) if payload is not None else 0
        result = response.get("result") or {}
        got = len(result.get("items") or []) if isinstance(result, dict) else 0
        key = f"{rec.job}/{rec.label}"
        with rec.lock:
            io = rec.io.setdefault(key, {"calls": 0, "rows_sent": 0, "rows_received": 0})
            io["calls"] += 1
            io["rows_sent"] += rows
            io["rows_received"] += got
        return response

    client_mod.InProcessTransport.send = send  # type: ignore[method-assign]


def _cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def stub_charts() -> None:
    """The first chart is drawn for real (matplotlib imported, its memory counted); every
    later client gets a copy of those PNG bytes. Only for A/B runs of memory settings."""
    from lorchestra_dagster.callables import charts, vault_measures

    cache: list[bytes] = []
    real = charts.render_chart

    def render(*args: Any, **kwargs: Any) -> bytes:
        if not cache:
            cache.append(real(*args, **kwargs))
        return bytes(bytearray(cache[0]))

    vault_measures.render_chart = render


def git_state() -> dict[str, str]:
    def out(*cmd: str) -> str:
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).stdout.strip()

    import hashlib

    diff = out("git", "diff", "HEAD")
    return {"head": out("git", "rev-parse", "HEAD")[:12],
            "dirty_diff_sha1": hashlib.sha1(diff.encode()).hexdigest()[:12],
            "dirty_files": out("git", "status", "--short").replace("\n", "; ")}  # fmt: skip


def child(args: argparse.Namespace) -> None:
    import gc
    import resource

    rec = Recorder(trace=args.tracemalloc)
    from lorchestra_dagster.launch import launch

    install_patches(rec, args.duckdb_memory_limit, args.duckdb_threads)
    if args.stub_charts:
        stub_charts()
    libc = ctypes.CDLL("libc.so.6")
    rec.boundary("between")
    started = time.monotonic()
    last = [started]
    last_cpu = [_cpu()]

    def progress(summary: Any) -> None:
        rec.boundary("between", job=f"after:{summary.job_id}")
        now = time.monotonic()
        rec.jobs.append(
            {
                "job_id": summary.job_id,
                "stage": summary.stage,
                "status": summary.status,
                "reason": summary.reason,
                "wall_s": round(now - last[0], 3),
                "cpu_s": round(_cpu() - last_cpu[0], 3),
                "loadavg_1m": os.getloadavg()[0],
                "t_end": round(now - started, 3),
                "duration_s": summary.duration_s,
                "rows_read": summary.rows_read,
                "rows_written": summary.rows_written,
                "rss_after": rss(),
                "malloc": mallinfo(),
                "smaps": smaps(),
                **dict(zip(("obmalloc", "obmalloc_live"), obmalloc_stats(), strict=True)),
                "duckdb": rec.duckdb_memory(),
                "gc_objects": len(gc.get_objects()) if args.tracemalloc else None,
                "steps": [
                    {
                        "step_id": s.step_id,
                        "op": s.op,
                        "duration_s": s.duration_s,
                        "rows_in": s.rows_in,
                        "rows_out": s.rows_out,
                        "rows_written": s.rows_written,
                    }
                    for s in summary.steps
                ],
            }
        )
        last[0] = now
        last_cpu[0] = _cpu()
        if args.malloc_trim:
            libc.malloc_trim(0)
            rec.jobs[-1]["rss_after_trim"] = rss()
        print(
            f"[memprof] {now - started:7.1f}s {summary.stage:9} {summary.job_id:40} "
            f"{summary.status:9} rss={rss() / MB:7.1f}MB wall={rec.jobs[-1]['wall_s']:.1f}s",
            file=sys.stderr,
            flush=True,
        )

    extra = {"batch_size": args.batch_size} if args.batch_size else {}
    if args.page_bytes:  # A/B of the keyset page's target size (engine constant)
        from lorchestra_dagster.engine import executor

        executor.PAGE_BYTES = args.page_bytes
    result = launch(
        "pipeline.daily_all",
        kind="pipeline",
        progress=progress,
        max_workers=args.max_workers,
        **extra,
    )
    total = time.monotonic() - started
    rec.boundary("end")
    rec.stop()
    doc = {
        "clients": args.clients,
        "max_workers": args.max_workers,
        "duckdb_memory_limit": args.duckdb_memory_limit,
        "duckdb_threads": args.duckdb_threads,
        "tracemalloc": args.tracemalloc,
        "stub_charts": args.stub_charts,
        "batch_size": args.batch_size,
        "page_bytes": args.page_bytes,
        "malloc_trim": args.malloc_trim,
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
        "git": git_state(),
        "peak": max(p["peak"] for p in rec.phases),
        "status": result.status,
        "failures": result.failures,
        "pipeline_s": round(total, 2),
        "ru_maxrss_note": "reset by clear_refs; use peak",
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rss_end": rss(),
        "jobs": rec.jobs,
        "phases": rec.phases,
        "io": rec.io,
        "timeline": rec.timeline,
    }
    Path(args.out).write_text(json.dumps(doc, indent=1, default=str))


# ----------------------------------------------------------------------------- the parent


def parent(args: argparse.Namespace) -> None:
    from lorchestra_dagster.sources.sandbox.generate import generate
    from lorchestra_dagster.sources.sandbox.server import sandbox_env, serve_in_thread

    t0 = time.perf_counter()
    practice = generate(args.clients, 7, catalog_dir=ROOT / "jobs")
    print(f"[memprof] generated {args.clients} clients in {time.perf_counter() - t0:.1f}s",
          file=sys.stderr)  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="lorchestra-memprof-"))
    try:
        home = tmp / "home"
        (home / "dagster").mkdir(parents=True)
        shutil.copy(ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
        with serve_in_thread(practice) as handle:
            env = {
                **os.environ,
                "LORCHESTRA_SANDBOX_URL": handle.url,
                **sandbox_env(),
                "LORCHESTRA_HOME": str(home),
                "DAGSTER_HOME": str(home / "dagster"),
                "LORCHESTRA_JOBS_DIR": str(ROOT / "jobs"),
                "DAGSTER_DISABLE_TELEMETRY": "1",
                "NO_GCE_CHECK": "true",
            }
            cmd = [sys.executable, __file__, "--child", "--clients", str(args.clients),
                   "--out", args.out, "--max-workers", str(args.max_workers)]  # fmt: skip
            if args.duckdb_memory_limit:
                cmd += ["--duckdb-memory-limit", args.duckdb_memory_limit]
            if args.duckdb_threads:
                cmd += ["--duckdb-threads", str(args.duckdb_threads)]
            if args.tracemalloc:
                cmd.append("--tracemalloc")
            if args.stub_charts:
                cmd.append("--stub-charts")
            if args.malloc_trim:
                cmd.append("--malloc-trim")
            if args.batch_size:
                cmd += ["--batch-size", str(args.batch_size)]
            if args.page_bytes:
                cmd += ["--page-bytes", str(args.page_bytes)]
            subprocess.run(cmd, cwd=ROOT, env=env, check=True)
        if args.keep_home:
            print(f"[memprof] home kept at {home}", file=sys.stderr)
    finally:
        if not args.keep_home:
            shutil.rmtree(tmp, ignore_errors=True)
    report([json.loads(Path(args.out).read_text())])
    breakdown(json.loads(Path(args.out).read_text()))


# ----------------------------------------------------------------------------- reports


def per_job(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per job: rss before/after, exact peak, seconds by phase, step peaks."""
    out: dict[str, dict[str, Any]] = {}
    prev_rss = None
    phases_by_job: dict[str, list[dict[str, Any]]] = {}
    for ph in doc["phases"]:
        if ph["job"]:
            phases_by_job.setdefault(ph["job"], []).append(ph)
    # 'between' phases (after a callback until the next job's first phase) belong to the
    # next job; they are Dagster event handling: attribute their peak to it as well.
    for j in doc["jobs"]:
        jid = j["job_id"]
        phs = phases_by_job.get(jid, [])
        peak = max([p["peak"] for p in phs], default=j["rss_after"])
        steps = {}
        for p in phs:
            if p["label"].startswith("step:"):
                sid = p["label"][5:]
                s = steps.setdefault(sid, {"peak": 0, "seconds": 0.0, "py_peak": 0})
                s["peak"] = max(s["peak"], p["peak"])
                s["seconds"] += p["seconds"]
                s["py_peak"] = max(s["py_peak"], p.get("py_peak", 0))
        secs: dict[str, float] = {}
        for p in phs:
            kind = "step" if p["label"].startswith("step:") else p["label"]
            secs[kind] = secs.get(kind, 0.0) + p["seconds"]
        before = prev_rss if prev_rss is not None else (phs[0]["rss_end"] if phs else 0)
        out[jid] = {
            **{
                k: j[k]
                for k in (
                    "stage",
                    "status",
                    "wall_s",
                    "duration_s",
                    "rows_read",
                    "rows_written",
                    "rss_after",
                    "duckdb",
                    "malloc",
                )
            },  # fmt: skip
            "cpu_s": j.get("cpu_s"),
            "rss_before": before,
            "peak": peak,
            "py_peak": max([p.get("py_peak", 0) for p in phs], default=0),
            "phase_s": {k: round(v, 2) for k, v in secs.items()},
            "steps": steps,
            "step_rows": {s["step_id"]: (s["rows_in"], s["rows_out"]) for s in j["steps"]},
        }
        prev_rss = j["rss_after"]
    return out


def report(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        print(
            f"\n## {doc['clients']} clients, max_workers={doc['max_workers']}, "
            f"duckdb memory_limit={doc['duckdb_memory_limit']} threads={doc['duckdb_threads']} "
            f"tracemalloc={doc['tracemalloc']} stub_charts={doc.get('stub_charts')} "
            f"malloc_trim={doc.get('malloc_trim')} batch_size={doc.get('batch_size')} "
            f"env={doc.get('malloc_env')}: "
            f"status {doc['status']}, {doc['pipeline_s']}s, "
            f"peak {max(p['peak'] for p in doc['phases']) / MB:.0f} MB, "
            f"rss at end {doc['rss_end'] / MB:.0f} MB"
        )
        print("| job | stage | before MB | after MB | peak MB | peak-before | rows r/w | wall s "
              "| engine s | fp s | checks s | top step (peak MB, s) |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for jid, r in per_job(doc).items():
            top = max(r["steps"].items(), key=lambda kv: kv[1]["peak"], default=None)
            top_s = f"{top[0]} ({top[1]['peak'] / MB:.0f}, {top[1]['seconds']:.1f})" if top else ""
            print(
                f"| {jid} | {r['stage']} | {r['rss_before'] / MB:.0f} | {r['rss_after'] / MB:.0f} "
                f"| {r['peak'] / MB:.0f} | {(r['peak'] - r['rss_before']) / MB:+.0f} "
                f"| {r['rows_read']}/{r['rows_written']} | {r['wall_s']:.1f} "
                f"| {r['duration_s']:.1f}"
                f" | {r['phase_s'].get('fingerprint', 0):.1f} | {r['phase_s'].get('checks', 0):.1f}"
                f" | {top_s} |"
            )


def breakdown(doc: dict[str, Any]) -> None:
    """Per job end: RSS by mapping kind, pymalloc arenas, glibc heap and DuckDB's own count."""
    print(f"\n## {doc['clients']} clients: memory at each job's end (MB)")
    print("| job | rss | [heap] | anon | file | pymalloc | pymalloc live | glibc in use "
          "| glibc free | duckdb |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for j in doc["jobs"]:
        sm, m = j.get("smaps") or {}, j.get("malloc") or {}
        duck = (j.get("duckdb") or {}).get("total", 0)
        print(
            f"| {j['job_id']} | {j['rss_after'] / MB:.0f} | {sm.get('heap', 0) / MB:.0f} "
            f"| {sm.get('anon', 0) / MB:.0f} | {sm.get('file', 0) / MB:.0f} "
            f"| {j.get('obmalloc', 0) / MB:.0f} | {j.get('obmalloc_live', 0) / MB:.0f} "
            f"| {m.get('heap_in_use', 0) / MB:.0f} "
            f"| {m.get('heap_free', 0) / MB:.0f} | {duck / MB:.0f} |"
        )


def compare(small: dict[str, Any], large: dict[str, Any]) -> None:
    a, b = per_job(small), per_job(large)
    ns, nl = small["clients"], large["clients"]
    k = nl / ns
    print(f"\n## {ns} vs {nl} clients (x{k:g}); peak = exact VmHWM during the job")
    print(
        f"| job | rows r/w @{ns} | rows r/w @{nl} | wall s @{ns} | wall s @{nl} | time x "
        f"| cpu s @{ns} | cpu s @{nl} | rows x | before→peak MB @{ns} "
        f"| before→peak MB @{nl} | peak−before Δ @{ns} "
        f"| peak−before Δ @{nl} | after MB @{nl} |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for jid in b:
        if jid not in a:
            continue
        x, y = a[jid], b[jid]
        rows_x = (y["rows_read"] + y["rows_written"]) / max(1, x["rows_read"] + x["rows_written"])
        time_x = y["wall_s"] / max(1e-3, x["wall_s"])
        print(
            f"| {jid} | {x['rows_read']}/{x['rows_written']} | {y['rows_read']}/{y['rows_written']}"
            f" | {x['wall_s']:.1f} | {y['wall_s']:.1f} | {time_x:.1f} "
            f"| {x.get('cpu_s') or 0:.1f} | {y.get('cpu_s') or 0:.1f} | {rows_x:.1f} "
            f"| {x['rss_before'] / MB:.0f}→{x['peak'] / MB:.0f} "
            f"| {y['rss_before'] / MB:.0f}→{y['peak'] / MB:.0f} "
            f"| {(x['peak'] - x['rss_before']) / MB:+.0f} "
            f"| {(y['peak'] - y['rss_before']) / MB:+.0f}"
            f" | {y['rss_after'] / MB:.0f} |"
        )
    pa = max(p["peak"] for p in small["phases"])
    pb = max(p["peak"] for p in large["phases"])
    print(f"\ntotal: {small['pipeline_s']}s vs {large['pipeline_s']}s; peak RSS "
          f"{pa / MB:.0f} vs {pb / MB:.0f} MB (x{pb / pa:.2f})")  # fmt: skip


def steps(small: dict[str, Any], large: dict[str, Any], jobs: list[str]) -> None:
    """Per step of ``jobs``: seconds, rows and exact peak (absolute, MB) at both sizes."""
    a, b = per_job(small), per_job(large)
    ns, nl = small["clients"], large["clients"]
    print(f"| job / step | s @{ns} | s @{nl} | x | rows out @{nl} | peak MB @{ns} "
          f"| peak MB @{nl} | Δ vs job start @{ns} | Δ vs job start @{nl} |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for jid in jobs:
        x, y = a[jid], b[jid]
        names = list(dict.fromkeys([*x["steps"], *y["steps"]]))
        for sid in names:
            sx, sy = x["steps"].get(sid, {}), y["steps"].get(sid, {})
            tx, ty = sx.get("seconds", 0.0), sy.get("seconds", 0.0)
            px, py = sx.get("peak", 0), sy.get("peak", 0)
            print(
                f"| {jid} / {sid} | {tx:.2f} | {ty:.2f} | {ty / tx if tx > 0.005 else 0:.1f} "
                f"| {y['step_rows'].get(sid, (0, 0))[1]} | {px / MB:.0f} | {py / MB:.0f} "
                f"| {(px - x['rss_before']) / MB:+.0f} | {(py - y['rss_before']) / MB:+.0f} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=300)
    ap.add_argument("--max-workers", type=int, default=1)
    ap.add_argument("--duckdb-memory-limit", default=None, help="e.g. 256MB (local patch)")
    ap.add_argument("--duckdb-threads", type=int, default=None)
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument(
        "--stub-charts",
        action="store_true",
        help="draw one real chart, reuse its PNG for every client (A/B runs only)",
    )
    ap.add_argument("--malloc-trim", action="store_true", help="malloc_trim(0) after each job")
    ap.add_argument("--batch-size", type=int, default=None, help="envelope batch_size (5000)")
    ap.add_argument("--page-bytes", type=int, default=None, help="keyset page JSON bytes (4 MiB)")
    ap.add_argument("--keep-home", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--compare", nargs=2, metavar=("SMALL", "LARGE"))
    ap.add_argument("--report", nargs="+", metavar="JSON")
    ap.add_argument("--breakdown", nargs="+", metavar="JSON", help="memory by kind per job")
    ap.add_argument("--steps", nargs="+", metavar="ARG", help="SMALL LARGE job [job ...]")
    args = ap.parse_args()
    if args.compare:
        compare(*(json.loads(Path(p).read_text()) for p in args.compare))
        return
    if args.steps:
        small, large = (json.loads(Path(p).read_text()) for p in args.steps[:2])
        steps(small, large, args.steps[2:])
        return
    if args.breakdown:
        for path in args.breakdown:
            breakdown(json.loads(Path(path).read_text()))
        return
    if args.report:
        report([json.loads(Path(p).read_text()) for p in args.report])
        return
    args.out = args.out or f"/tmp/memprof-{args.clients}.json"
    (child if args.child else parent)(args)


if __name__ == "__main__":
    main()
