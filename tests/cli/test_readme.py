"""The README's "Everyday use" block, run as written after ``make demo``.

The commands are parsed from README.md, so the test fails as soon as the
README names a command that does not work (or stops naming one this test
knows how to check). Three substitutions keep it a test: ``make`` does not
reinstall (``-o .venv/.installed``), ``<run-id-prefix>`` becomes the newest
run's prefix, and the storacle server gets a free port and is stopped once it
answers.
"""

from __future__ import annotations

import os
import re
import subprocess
import textwrap

import pytest
from kit import REPO, free_port

from lorchestra_dagster.defs.pipelines import flatten
from lorchestra_dagster.spec import load_catalog

README = REPO / "README.md"


def everyday_commands(text: str | None = None) -> list[str]:
    """The command lines of the first ``bash`` block under "## Everyday use"."""
    text = README.read_text(encoding="utf-8") if text is None else text
    section = text.split("## Everyday use", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "README's Everyday use section has no ```bash block"
    return [ln for ln in match.group(1).splitlines() if ln.strip() and not ln.startswith("#")]


@pytest.mark.unit
def test_parser_reads_the_block():
    cmds = everyday_commands()
    assert any(c.startswith(".venv/bin/lorchestra validate") for c in cmds)
    assert any("sandbox env" in c for c in cmds)
    sample = "## Everyday use\n\n```bash\nmake x   # y\n\n# note\nls\n```\n"
    sample += "## Next\n```bash\nno\n```"
    assert everyday_commands(sample) == ["make x   # y", "ls"]


def _script_line(cmd: str) -> str:
    """One README line as the bash the test runs (with the substitutions above)."""
    run_id = (
        '"$(.venv/bin/lorchestra runs list --json --limit 1 | '
        '.venv/bin/python -c \'import json,sys; print(json.load(sys.stdin)[0]["run_id"][:8])\')"'
    )
    cmd = cmd.replace("<run-id-prefix>", run_id)
    if cmd.startswith("make "):
        cmd = "make -s -o .venv/.installed " + cmd[len("make ") :]
    if " storacle serve " in cmd:
        port = free_port()
        cmd = re.sub(r"--port \d+", f"--port {port}", cmd.split("#", 1)[0])
        return textwrap.dedent(
            f"""\
            {cmd} & serve_pid=$!
            for _ in $(seq 1 100); do
              curl -s -o /dev/null http://127.0.0.1:{port}/health && break; sleep 0.2
            done
            STORACLE_URL=http://127.0.0.1:{port} .venv/bin/lorchestra sql "SELECT 1 AS one"
            kill -INT $serve_pid; wait $serve_pid || test $? -eq 130
            """
        )
    return cmd


@pytest.mark.e2e
@pytest.mark.slow  # make demo (3 clients) plus a daily_all rerun: ~60 s on 2 cores
def test_readme_everyday_use_after_make_demo(tmp_path):
    home = tmp_path / "home"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LORCHESTRA_SANDBOX_URL", "STORACLE_URL", "DAGSTER_HOME", "MAKEFLAGS")
    }
    env.update(LORCHESTRA_HOME=str(home), CLIENTS="3", COLUMNS="200")
    demo = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    try:
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        assert f"vault: {home / 'vault'}" in demo.stdout
        assert "make ui" in demo.stdout and "sandbox env" in demo.stdout
        assert f"open alerts: {home / 'vault' / 'alerts.md'}" in demo.stdout
        assert f"this morning's page: {home / 'vault' / 'today.md'}" in demo.stdout
        # 3 clients: one invoice the sandbox never sees paid
        assert "unpaid invoices: 1" in demo.stdout and "daily_all succeeded" in demo.stdout
        cmds = everyday_commands()
        body = "\n".join(f"echo '+ {i}'\n{_script_line(c)}" for i, c in enumerate(cmds))
        script = tmp_path / "everyday.sh"
        script.write_text("set -euo pipefail\n" + body + "\necho '+ done'\n")
        res = subprocess.run(
            ["bash", str(script)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
            check=False,
        )
        out = res.stdout + res.stderr
        assert res.returncode == 0, out[-4000:]
        assert "+ done" in res.stdout
        assert "dry run: nothing written" in res.stdout
        assert "succeeded pipeline.daily_all" in res.stdout
        # The summary counts jobs (every job of the catalog), not stages.
        jobs = len(flatten(load_catalog(REPO / "jobs"), "pipeline.daily_all").job_ids)
        assert re.search(rf"{jobs} job\(s\): \d+ ok, 0 failed, \d+ skipped", res.stdout)
        assert "is not set" not in out  # the sandbox's credentials reached every source
    finally:
        subprocess.run(
            [str(REPO / ".venv/bin/lorchestra"), "sandbox", "down"],
            cwd=REPO,
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
