"""Find literals that look like secrets in catalog YAML.

Secrets come from the environment, never from YAML. Two checks:

* a key named like a secret (``password``, ``token``, ``api_key``,
  ``client_secret``, ...) holding a literal string (L060). References
  (``@ctx.x``), ``${NAME}``, ``env:NAME`` and keys ending in ``_env`` (whose
  value names a variable) are the allowed forms;
* any string shaped like a known credential (Stripe ``sk_live_``, GitHub
  ``ghp_``, AWS ``AKIA``, Slack ``xoxb-``, a JWT, a PEM private key, a Google
  API key) or a long high-entropy token (L061).

Messages never print the value, only where it is and what it looks like.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator

from lorchestra_dagster.spec.schema_errors import dotted
from lorchestra_dagster.spec.yamlpos import Pos, YamlDoc, YamlPath

_SECRET_KEY = re.compile(
    r"^(?:.*[_\-])?(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|private[_\-]?key|"
    r"access[_\-]?key|secret[_\-]?key|client[_\-]?secret|credentials?|auth[_\-]?token|bearer)$",
    re.IGNORECASE,
)
_SAFE_KEY_SUFFIX = re.compile(r"(?:_env|_var|_name|_file|_path|_url|_uri)$", re.IGNORECASE)
_ALLOWED_VALUE = re.compile(
    r"^(?:\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Za-z_][A-Za-z0-9_]*|env:[A-Za-z_][A-Za-z0-9_]*|@.+)$"
)
#: Placeholders that say "no secret here".
_PLACEHOLDER = re.compile(r"^(?:|<[^>]*>|\*+|x+|redacted)$", re.IGNORECASE)

TOKEN_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a Stripe secret key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}")),
    ("a Stripe webhook secret", re.compile(r"\bwhsec_[0-9A-Za-z]{20,}")),
    ("a GitHub token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[0-9A-Za-z]{30,}")),
    ("a GitHub token", re.compile(r"\bgithub_pat_[0-9A-Za-z_]{22,}")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[0-9A-Za-z\-]{10,}")),
    (
        "a JWT",
        re.compile(r"\beyJ[0-9A-Za-z_\-]{8,}\.eyJ[0-9A-Za-z_\-]{8,}\.[0-9A-Za-z_\-]{8,}"),
    ),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b")),
    ("a Google OAuth token", re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}")),
    ("an OpenAI/Anthropic key", re.compile(r"\bsk-(?:ant-|proj-)?[0-9A-Za-z_\-]{20,}")),
)
_TOKENISH = re.compile(r"^[A-Za-z0-9+/=_\-]{32,}$")
#: Keys whose values are hashes by design (checksums in transform metadata).
_HASH_KEY = re.compile(r"(?:sha\d*|hash|checksum|digest|etag|idem_key)$", re.IGNORECASE)
#: Keys whose values are identifiers of a resource, not credentials: a Google
#: spreadsheet or form id is long and random-looking but grants nothing. Only the
#: entropy guess is skipped for them; known token shapes are still refused.
_ID_KEY = re.compile(r"(?:(?:^|[_\-])(?:id|ID)s?|[a-z0-9](?:Id|ID)s?)$")


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _high_entropy(value: str) -> bool:
    if not _TOKENISH.match(value):
        return False
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    return classes == 3 and entropy(value) >= 4.0


def secret_key_name(key: str) -> bool:
    """True for key names that hold secrets (``client_secret``), false for ``token_env``."""
    return bool(_SECRET_KEY.match(key)) and not _SAFE_KEY_SUFFIX.search(key)


def scan(doc: YamlDoc) -> Iterator[tuple[str, YamlPath, Pos, str]]:
    """Yield ``(code, path, pos, message)`` for each secret-looking literal in ``doc``."""
    for path, value, tag, pos in doc.scalars:
        if tag in ("null", "bool"):
            continue
        key = path[-1] if path and isinstance(path[-1], str) else None
        where = dotted(path)
        if key is not None and secret_key_name(key):
            stripped = value.strip()
            if not (_ALLOWED_VALUE.match(stripped) or _PLACEHOLDER.match(stripped)):
                yield (
                    "L060",
                    path,
                    pos,
                    f"{where} holds a literal secret; read it from the environment "
                    f"(use '{key}_env: VAR_NAME', '${{VAR}}' or 'env:VAR')",
                )
                continue
        if tag != "str":
            continue
        for label, pattern in TOKEN_SHAPES:
            if pattern.search(value):
                yield (
                    "L061",
                    path,
                    pos,
                    f"{where} holds what looks like {label}; move it to "
                    "the environment and rotate it",
                )
                break
        else:
            exempt = key is not None and (_HASH_KEY.search(key) or _ID_KEY.search(key))
            if not exempt and _high_entropy(value.strip()):
                yield (
                    "L061",
                    path,
                    pos,
                    f"{where} holds a long high-entropy string that looks like a credential; "
                    "move it to the environment (or rename the key if it is a hash)",
                )
