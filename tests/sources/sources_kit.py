"""Helpers shared by the sources tests (a module, so test files can import it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kit import REPO

from lorchestra_dagster.callables import CallContext, collect, get_callable
from lorchestra_dagster.sources.sandbox.server import SandboxHandle, sandbox_env

SHIPPED_SOURCES = REPO / "jobs" / "sources.yaml"


def write_catalog(root: Path, drop_dir: Path | None = None, **overrides: Any) -> Path:
    """The shipped sources.yaml with small pages (so paging is exercised) and fast retries."""
    doc = yaml.safe_load(SHIPPED_SOURCES.read_text(encoding="utf-8"))
    for stream in doc["streams"].values():
        if stream["connector"] == "jsonl":
            stream["path"] = str((drop_dir or root / "drop") / "*.jsonl")
            continue
        stream.update({"page_size": 4, "max_attempts": 3, "timeout_s": 5})
        stream.update(overrides)
    root.mkdir(parents=True, exist_ok=True)
    (root / "sources.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return root


def env_for(
    handle: SandboxHandle | None = None, url: str | None = None, **extra: str
) -> dict[str, str]:
    env = sandbox_env()
    env["LORCHESTRA_SANDBOX_URL"] = url or (handle.url if handle else "")
    env.update(extra)
    return env


def run_injest(catalog: Path, source: str, env: dict[str, str], **config: Any) -> dict[str, Any]:
    ctx = CallContext(
        catalog_dir=catalog,
        home=catalog.parent / "home",
        env=env,
        job_id=f"ingest_{source}",
        step_id="fetch",
    )
    return collect(get_callable("injest")({"source": source, "config": config}, ctx))
