"""file.write: confined to the vault, atomic, rewritten only when bytes differ."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from conftest import counts, submit

from lorchestra_dagster.errors import StoracleError
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.client import StoracleClient

pytestmark = pytest.mark.unit


def write(path: str, content: str, **extra) -> tuple[str, dict]:
    return ("file.write", {"path": path, "content": content, **extra})


def test_write_unchanged_updated(client: StoracleClient, settings: Settings) -> None:
    target = settings.vault_dir / "clients" / "c1" / "notes.md"
    [res] = submit(client, [write("clients/c1/notes.md", "# hello\n")])
    assert counts(res) == (1, 0, 0, 0) and target.read_text() == "# hello\n"
    mtime = target.stat().st_mtime_ns
    [res] = submit(client, [write("clients/c1/notes.md", "# hello\n")])
    assert counts(res) == (0, 0, 1, 0) and target.stat().st_mtime_ns == mtime
    [res] = submit(client, [write("clients/c1/notes.md", "# changed\n")])
    assert counts(res) == (0, 1, 0, 0) and target.read_text() == "# changed\n"
    assert [p.name for p in target.parent.iterdir()] == ["notes.md"]  # no temp files left


def test_base64_content(client: StoracleClient, settings: Settings) -> None:
    data = bytes(range(256))
    submit(client, [write("charts/a.png", base64.b64encode(data).decode(), encoding="base64")])
    assert (settings.vault_dir / "charts" / "a.png").read_bytes() == data
    with pytest.raises(StoracleError, match="not valid base64"):
        submit(client, [write("charts/b.png", "***", encoding="base64")])


def test_dry_run_creates_nothing(client: StoracleClient, settings: Settings) -> None:
    [res] = submit(client, [write("a/b/c.md", "x")], dry_run=True)
    assert counts(res) == (1, 0, 0, 0)
    assert not settings.vault_dir.exists()


@pytest.mark.parametrize("path", ["../escape.md", "a/../../escape.md", "/tmp/escape.md", "~/x"])
def test_paths_escaping_the_vault_are_refused(
    client: StoracleClient, settings: Settings, tmp_path: Path, path: str
) -> None:
    with pytest.raises(StoracleError) as info:
        submit(client, [write(path, "x")])
    assert repr(path) in str(info.value) and "escapes the vault root" in str(info.value)
    assert info.value.classification == "permanent" and info.value.rpc_code == -32602
    assert not settings.vault_dir.exists()


def test_symlink_escape_is_refused(
    client: StoracleClient, settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    settings.vault_dir.mkdir(parents=True)
    os.symlink(outside, settings.vault_dir / "link")
    with pytest.raises(StoracleError, match="'link/x.md' escapes the vault root"):
        submit(client, [write("link/x.md", "x")])
    assert list(outside.iterdir()) == []


def test_one_bad_path_writes_no_file_of_the_plan(
    client: StoracleClient, settings: Settings
) -> None:
    with pytest.raises(StoracleError, match="escapes") as info:
        submit(client, [write("ok.md", "x"), write("../bad.md", "y")])
    assert not (settings.vault_dir / "ok.md").exists()
    reasons = [r["error"]["data"].get("reason") for r in info.value.data["results"]]
    assert reasons == ["rolled_back", None]


def test_warehouse_failure_leaves_vault_untouched(
    client: StoracleClient, settings: Settings
) -> None:
    bad = ("bq.upsert", {"dataset": "raw", "table": "t", "key_columns": ["k"], "rows": [{"a": 1}]})
    with pytest.raises(StoracleError, match="missing key column") as info:
        submit(client, [write("ok.md", "x"), bad])
    assert not (settings.vault_dir / "ok.md").exists()
    reasons = [r["error"]["data"].get("reason") for r in info.value.data["results"]]
    assert reasons == ["not_applied", None]
