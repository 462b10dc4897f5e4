"""One ``Settings`` for every LORCHESTRA_*/STORACLE_* variable: read nowhere else,
listed in the README, shown by doctor without secrets."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from kit import REPO

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.settings import Settings, variables

pytestmark = pytest.mark.unit

PACKAGE = REPO / "lorchestra_dagster"
OURS = re.compile(r"^(LORCHESTRA|STORACLE)_[A-Z0-9_]+$")


def _env_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """``x.get("LORCHESTRA_...")``, ``getenv(...)`` and ``x["LORCHESTRA_..."]`` reads, also
    through a module constant naming the variable (``TOKEN_ENV = "..."``)."""
    names = {
        t.id: node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and OURS.match(node.value.value)
        for t in node.targets
        if isinstance(t, ast.Name)
    }

    def var(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value if OURS.match(node.value) else None
        return names.get(node.id) if isinstance(node, ast.Name) else None

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("get", "getenv") and (v := var(node.args[0])):
                found.append((node.lineno, v))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            if v := var(node.slice):
                found.append((node.lineno, v))
    return found


def test_no_module_reads_our_variables_but_settings() -> None:
    reads = [
        f"{path.relative_to(REPO)}:{line}: {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "settings.py"
        for line, name in _env_reads(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert reads == [], "read these through Settings:\n" + "\n".join(reads)


def test_the_scan_finds_a_direct_read() -> None:
    code = 'import os\nTOKEN = "LORCHESTRA_X"\nos.environ.get("LORCHESTRA_Y")\nenv[TOKEN]\n'
    assert _env_reads(ast.parse(code)) == [(3, "LORCHESTRA_Y"), (4, "LORCHESTRA_X")]


def test_the_readme_table_lists_every_variable() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    listed = {m for row in section.splitlines() if row.startswith("| `") for m in
              re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}  # fmt: skip
    expected = {n for names in variables().values() for n in names}
    assert listed == expected


def test_a_mapping_and_the_environment_give_the_same_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {
        "LORCHESTRA_HOME": str(tmp_path),
        "LORCHESTRA_MAX_ROWS": "5",
        "LORCHESTRA_DUCKDB_SHORT_LOCK": "1",
        "GOOGLE_CLOUD_PROJECT": "p",
        "LORCHESTRA_BACKEND": "",  # empty means unset, as in a shell
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from_mapping = Settings.from_env(env)
    assert from_mapping == Settings.from_env()
    assert from_mapping.limits.max_rows == 5 and from_mapping.duckdb_short_lock
    assert from_mapping.bq_project == "p" and from_mapping.backend == "duckdb"
    assert Settings.from_env(env, home=tmp_path / "h").home == tmp_path / "h"
    # A mapping is the whole environment: what the process has set does not leak in.
    assert Settings.from_env({}).max_rows == 1_000_000 and Settings.from_env({}).bq_project is None


def test_a_bad_value_names_its_variable_never_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PermanentError, match="LORCHESTRA_MAX_ROWS") as info:
        Settings.from_env({"LORCHESTRA_MAX_ROWS": "Jane Roe"})
    assert "Jane" not in str(info.value)
    monkeypatch.setenv("LORCHESTRA_BACKEND", "oracle")
    with pytest.raises(PermanentError, match="LORCHESTRA_BACKEND"):
        Settings.from_env()
    # DuckDB sizes are checked when the settings load (the backend splices them into SET)
    for var in ("LORCHESTRA_DUCKDB_MEMORY_LIMIT", "LORCHESTRA_DUCKDB_BURST_MEMORY_LIMIT"):
        with pytest.raises(PermanentError, match=f"{var}: .*2GB or 512MiB") as size:
            Settings.from_env({var: "1GB'; ATTACH 'x"})
        assert "ATTACH" not in str(size.value)


def test_doctor_rows_never_show_a_secret() -> None:
    env = {"LORCHESTRA_STORACLE_TOKEN": "tok-secret", "LORCHESTRA_USER": "Dr Jane Roe"}
    rows = {r["field"]: r for r in Settings.from_env(env).shown(env)}
    assert rows["storacle_token"] == {**rows["storacle_token"], "set": True, "value": "set"}
    assert rows["user"]["value"] == "set" and rows["llm_api_key"]["value"] == "unset"
    assert "tok-secret" not in repr(rows) and "Jane" not in repr(rows)
    assert rows["max_rows"]["value"] == "1000000" and not rows["max_rows"]["set"]
