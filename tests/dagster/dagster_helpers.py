"""Helpers for the Dagster tests: a small real catalog, CLI runs, free ports.

The mini catalog is the shipped one cut down to the drop-folder stream: the
real ``ingest_drop_folder`` and ``canonize_jsonl_note`` jobs, their
transforms and schemas, and pipelines ``ingest``/``canonize``/``daily_all``
(stop_on_failure). Its drop folder lives in the test's temp dir, so a test can
plant a marker string in a note and look for it on disk afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from kit import JOBS, REPO, free_port, write_catalog

#: Debian's package (scripts/ensure_chromium.sh), driven by Playwright; never downloaded.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BIN = REPO / ".venv" / "bin"

NOTES = [
    {
        "id": "note-0001",
        "kind": "note",
        "title": "Supervision reminder",
        "body": "Bring two case formulations to group supervision.",
        "updated_at": "2026-11-02T09:15:00Z",
    },
    {
        "id": "note-0002",
        "kind": "note",
        "title": "Room booking",
        "body": "Room 2 is booked for Thursday evenings.",
        "updated_at": "2026-11-03T16:40:00Z",
    },
]


def ensure_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        subprocess.run(["bash", str(REPO / "scripts" / "ensure_chromium.sh")], check=True)
    assert os.path.exists(CHROMIUM), "Debian's chromium is required for the browser tests"


def wait_for_text(page, texts: list[str], timeout_s: float = 60) -> str:
    """The page's text once every one of ``texts`` is on it (the UI draws asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = page.inner_text("body")
        missing = [t for t in texts if t not in body]
        if not missing:
            return body
        assert time.monotonic() < deadline, f"not shown: {missing} in {page.url}:\n{body[:4000]}"
        time.sleep(1)


def open_timeline_bars(page, url: str, row: str) -> Any:
    """The Overview timeline at one hour, its run bars, the first one's popover opened.

    The hover is dispatched on the bar itself: a run of a few seconds is a bar
    a few pixels wide next to the "Now" line, which would take the pointer.
    """
    page.goto(f"{url}/overview/activity/timeline", wait_until="domcontentloaded")
    wait_for_text(page, ["lorchestra", row], timeout_s=120)
    page.locator("button").filter(has_text=re.compile(r"^1hr$")).click()
    chunks = page.locator("[class*=RunTimeline_runChunk] .chunk-popover-target")
    chunks.first.wait_for(timeout=60_000)
    chunks.first.dispatch_event("mouseover")  # the popover opens on hover
    return chunks


def write_notes(folder: Path, name: str, notes: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(json.dumps(n) + "\n" for n in notes), encoding="utf-8")
    return path


def make_catalog(root: Path, drop: Path, *, extra_jobs: dict[str, str] | None = None) -> Path:
    """A catalog of the drop-folder stream only, reading ``drop/*.jsonl``."""
    cat = root / "jobs"
    for sub in ("transforms", "schemas"):
        shutil.copytree(JOBS / sub, cat / sub)
    (cat / "ingest").mkdir(parents=True)
    (cat / "canonize").mkdir()
    (cat / "pipelines").mkdir()
    shutil.copy(JOBS / "ingest" / "ingest_drop_folder.yaml", cat / "ingest")
    shutil.copy(JOBS / "canonize" / "canonize_jsonl_note.yaml", cat / "canonize")
    (cat / "sources.yaml").write_text(
        f"streams:\n  drop_folder:\n    connector: jsonl\n    path: {drop.as_posix()}/*.jsonl\n",
        encoding="utf-8",
    )
    pipelines = {
        "pipeline.ingest": ("ingest", ["ingest_drop_folder"], False),
        "pipeline.canonize": ("canonize", ["canonize_jsonl_note"], False),
    }
    for pid, (stage, jobs, stop) in pipelines.items():
        (cat / "pipelines" / f"{pid}.yaml").write_text(
            f"pipeline_id: {pid}\nstages:\n- name: {stage}\n  jobs: {json.dumps(jobs)}\n"
            f"stop_on_failure: {str(stop).lower()}\n",
            encoding="utf-8",
        )
    (cat / "pipelines" / "pipeline.daily_all.yaml").write_text(
        "pipeline_id: pipeline.daily_all\nstages:\n"
        "- name: ingest\n  jobs: [pipeline.ingest]\n"
        "- name: canonize\n  jobs: [pipeline.canonize]\n"
        "stop_on_failure: true\n",
        encoding="utf-8",
    )
    return write_catalog(cat, extra_jobs or {})


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["DAGSTER_DISABLE_TELEMETRY"] = "1"
    env.update(extra or {})
    return env


def dagster_cli(
    *args: str, env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dagster"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def dagster_dev(env: dict[str, str], log_path: Path, timeout_s: float = 180) -> Iterator[str]:
    """`dagster dev` (webserver + daemon) on a free loopback port; yields its base URL.

    It runs in a process group of its own with SIGINT restored (a shell in the
    background ignores it and dagster dev maps SIGTERM onto it), and the whole
    group is stopped afterwards.
    """
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
             "-p", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                try:
                    if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass  # not listening yet
                assert time.monotonic() < deadline, f"dagster dev did not answer in {timeout_s} s"
                time.sleep(1)
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
