"""Everything under LORCHESTRA_HOME is 0600/0700 whatever the umask, and loose homes tighten.

Each case runs in a subprocess started with ``umask 022`` (the usual default), so
the modes are what a clinician's shell would produce, not what pytest's umask
happens to be.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kit import REPO

LORCHESTRA = Path(sys.executable).with_name("lorchestra")


def _umask_022() -> None:
    os.umask(0o022)


def _run(args: list[str], home: Path, **kw) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "LORCHESTRA_HOME": str(home),
        "LORCHESTRA_JOBS_DIR": str(REPO / "jobs"),
        # REPO first: the subprocess runs this checkout, whatever the venv was installed from.
        "PYTHONPATH": os.pathsep.join(
            [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "project")]
        ),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    env.pop("DAGSTER_HOME", None)
    proc = subprocess.run(
        args, env=env, cwd=home.parent, preexec_fn=_umask_022, capture_output=True, text=True,
        timeout=300, **kw,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def loose_entries(home: Path) -> list[str]:
    """Every entry under ``home`` that is not a 0700 folder or a 0600 file (links skipped)."""
    bad = []
    for path in [home, *home.rglob("*")]:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
        if stat.S_IMODE(st.st_mode) != want:
            bad.append(f"{oct(stat.S_IMODE(st.st_mode))} {path.relative_to(home.parent)}")
    return bad


SCRIPT = textwrap.dedent(
    """
    from pathlib import Path
    import os
    from run_helpers import run_pipeline
    from vault_practice import seed_plan
    from lorchestra_dagster.engine import Services
    from lorchestra_dagster.settings import Settings
    from lorchestra_dagster.storacle.auth import load_token

    settings = Settings.from_env()
    services = Services.from_settings(settings)
    services.client.execute_plan(seed_plan())
    for pipeline_id in ("pipeline.views", "pipeline.project"):
        result = run_pipeline(pipeline_id, services)
        assert result.status == "succeeded", result.failures
    load_token(settings.home)
    """
)


# slow (~15-35 s): two pipelines as Dagster runs in a fresh process, the only honest way to
# have DuckDB, SQLite and Dagster create their own files under the user's umask.
@pytest.mark.e2e
@pytest.mark.slow
def test_a_new_home_is_private_under_umask_022(tmp_path: Path) -> None:
    """Warehouse, vault (local.db, client folders), Dagster instance and token: all private."""
    home = tmp_path / "home"
    _run([sys.executable, "-c", SCRIPT], home)
    names = {p.relative_to(home).as_posix() for p in home.rglob("*")}
    assert {"warehouse.duckdb", "vault/local.db", "vault/alerts.md"} <= names
    assert any(n.startswith("vault/clients/") and n.endswith("/contact.md") for n in names)
    assert any(n.endswith("history/runs.db") for n in names), sorted(names)
    assert any(n.startswith("dagster/") and n.endswith(".db") for n in names)
    assert loose_entries(home) == []


@pytest.mark.e2e
def test_an_existing_loose_home_is_tightened_on_first_use(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    home = tmp_path / "home"
    client = home / "vault" / "clients" / "ashgrove-ada-1234"
    client.mkdir(parents=True, mode=0o755)
    for folder in (home, home / "vault", home / "vault" / "clients", client):
        os.chmod(folder, 0o755)
    (client / "contact.md").write_text("# Ada\n")
    (home / "logs").mkdir()
    os.chmod(home / "logs", 0o755)  # explicit: earlier tests may have set this process's umask
    (home / "logs" / "old.log").write_text("x\n")
    for f in (client / "contact.md", home / "logs" / "old.log"):
        os.chmod(f, 0o644)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours\n")
    os.chmod(outside, 0o644)
    (home / "vault" / "link.txt").symlink_to(outside)
    assert len(loose_entries(home)) == 7

    _run([str(LORCHESTRA), "runs", "list", "--json"], home)  # opens the Dagster instance

    assert loose_entries(home) == []
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644, "a link's target is not ours"
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755, "a home's parent is not ours"


@pytest.mark.unit
def test_private_dir_sets_only_the_folders_it_creates(tmp_path: Path) -> None:
    from lorchestra_dagster.privacy import private_dir

    os.chmod(tmp_path, 0o755)
    old = os.umask(0o022)
    try:
        private_dir(tmp_path / "a" / "b" / "c")
    finally:
        os.umask(old)
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
    for sub in ("a", "a/b", "a/b/c"):
        assert stat.S_IMODE((tmp_path / sub).stat().st_mode) == 0o700, sub
