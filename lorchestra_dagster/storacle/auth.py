"""Who may talk to a storacle server: a bearer token, JSON bodies, loopback names.

The threats are a second local user or process, a web page open in the
clinician's browser (a CSRF form post, DNS rebinding) and, when bound beyond
loopback, the network. Every request must carry ``Authorization: Bearer
<token>`` (compared in constant time); a body must be ``application/json`` (a
browser cannot send that cross-origin without a CORS preflight, which this
server never answers); ``Host`` and any ``Origin`` must name a loopback address
or a name in ``LORCHESTRA_STORACLE_ALLOWED_HOSTS``, which defeats rebinding (the
attacker's page arrives with its own host name).

The token is ``LORCHESTRA_STORACLE_TOKEN`` or, failing that, a random one kept in
``$LORCHESTRA_HOME/storacle.token`` (0600), created by whoever needs it first:
the server, the CLI, a Dagster run. Every process of one home reads the same file.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.privacy import private_dir
from lorchestra_dagster.settings import Settings

TOKEN_ENV = "LORCHESTRA_STORACLE_TOKEN"
ALLOWED_HOSTS_ENV = "LORCHESTRA_STORACLE_ALLOWED_HOSTS"
TOKEN_FILE = "storacle.token"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

# JSON-RPC codes of refusals (documented in docs/security.md); HTTP status in brackets.
UNAUTHORIZED = -32001  # [401] no or wrong bearer token
FORBIDDEN_ORIGIN = -32002  # [403] Host or Origin is not loopback / allowed
UNSUPPORTED_MEDIA = -32003  # [415] body is not application/json


def token_path(home: Path) -> Path:
    return Path(home) / TOKEN_FILE


def load_token(home: Path, env: Mapping[str, str] | None = None) -> str:
    """The token of this home: from the environment, else the home's token file (created 0600)."""
    configured = Settings.from_env(env).storacle_token
    if configured is not None:
        return configured.get_secret_value()
    path = token_path(home)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        text = ""
    if text:
        return text
    private_dir(path.parent)
    token = secrets.token_urlsafe(32)
    # O_EXCL: two processes racing to create it agree on the first one's token.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(token + "\n")
    return token


def allowed_hosts(env: Mapping[str, str] | None = None) -> frozenset[str]:
    """Loopback names plus the comma-separated allow-list from the environment."""
    listed = Settings.from_env(env).storacle_allowed_hosts
    extra = {h.strip().lower() for h in listed.split(",") if h.strip()}
    return LOOPBACK_NAMES | extra


def host_name(value: str) -> str:
    """``Host`` header or URL netloc without its port, lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def origin_host(origin: str) -> str:
    """The host of an ``Origin`` header (``null`` and junk give an empty string)."""
    try:
        return (urlsplit(origin).hostname or "").lower()
    except ValueError:
        return ""


def check_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a bearer token."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def check_bind(host: str, *, allow_remote: bool, env: Mapping[str, str] | None = None) -> None:
    """Refuse a non-loopback bind unless ``--allow-remote`` and an explicit token are given."""
    if host.lower() in LOOPBACK_NAMES:
        return
    if not allow_remote:
        raise PermanentError(
            f"refusing to listen on {host}: only loopback is served by default. "
            f"Binding beyond loopback exposes clinical data to the network; pass --allow-remote "
            f"and set {TOKEN_ENV} (and {ALLOWED_HOSTS_ENV} for the names clients use)",
            code="remote_bind",
        )
    if Settings.from_env(env).storacle_token is None:
        raise PermanentError(
            f"--allow-remote needs an explicit {TOKEN_ENV} (the generated token file is "
            "meant for one machine)",
            code="remote_bind",
        )
