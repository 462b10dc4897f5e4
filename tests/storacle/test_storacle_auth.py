"""The server's guard in process (httpx's ASGI transport): allow-list, token file, bind."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import httpx
import pytest

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.auth import (
    ALLOWED_HOSTS_ENV,
    TOKEN_ENV,
    check_bind,
    host_name,
    load_token,
)
from lorchestra_dagster.storacle.server import create_app
from lorchestra_dagster.storacle.service import StoracleService

pytestmark = pytest.mark.unit


def test_token_file_is_created_once_0600_and_env_wins(tmp_path: Path) -> None:
    first = load_token(tmp_path, {})
    assert len(first) >= 40 and load_token(tmp_path, {}) == first
    assert stat.S_IMODE((tmp_path / "storacle.token").stat().st_mode) == 0o600
    assert load_token(tmp_path, {TOKEN_ENV: "from-env"}) == "from-env"


def test_allow_listed_host_passes_and_others_are_refused(
    _isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOWED_HOSTS_ENV, "lorchestra.internal")
    app = create_app(service=StoracleService(Settings.from_env()), token="t0k3n")
    auth = {"authorization": "Bearer t0k3n"}

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        base = "http://lorchestra.internal:8765"
        async with httpx.AsyncClient(transport=transport, base_url=base) as client:
            return [
                await client.get("/health", headers=auth),
                await client.get("/health"),
                await client.get("/health", headers={**auth, "host": "evil.example"}),
            ]

    allowed, no_token, other = asyncio.run(calls())
    assert allowed.status_code == 200 and no_token.status_code == 401
    assert other.status_code == 403 and other.json()["error"]["code"] == -32002


def test_bind_rules_and_host_names() -> None:
    check_bind("127.0.0.1", allow_remote=False, env={})
    with pytest.raises(PermanentError, match="--allow-remote"):
        check_bind("0.0.0.0", allow_remote=False, env={TOKEN_ENV: "x"})
    with pytest.raises(PermanentError, match=TOKEN_ENV):
        check_bind("0.0.0.0", allow_remote=True, env={})
    check_bind("0.0.0.0", allow_remote=True, env={TOKEN_ENV: "x"})
    assert host_name("LOCALHOST:8765") == "localhost"
    assert host_name("[::1]:8765") == "[::1]"
