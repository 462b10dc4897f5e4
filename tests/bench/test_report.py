"""The bench's document and README shaping (bench/report.py, bench/run.py's options).

Nothing here measures or asserts a time: the figures are made-up numbers, the tests check
that every figure carries its goal, verdict, note and command, and that the README table
keeps the rows of figures not run this time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import report  # noqa: E402

pytestmark = pytest.mark.unit


def _fig(fid: str, value: float | None, **kw):
    return report.figure(
        fid,
        "write path",
        [report.check("ratio", value, ">=", 0.5), report.check("rows", 0, "==", 0)],
        baseline="plain insert",
        command=f"make bench ONLY={fid}",
        size="100 rows",
        measured={"rows": 100},
        **kw,
    )


def test_check_compares_and_states_its_goal():
    assert report.check("x", 1.2, "<=", 1.5) == {
        "what": "x",
        "value": 1.2,
        "goal": "<= 1.5",
        "met": True,
    }
    assert not report.check("x", 1.6, "<=", 1.5)["met"]
    assert report.check("x", 1.7, ">=", 1.7)["met"]
    assert not report.check("unmeasured", None, ">=", 1.0)["met"]
    with pytest.raises(ValueError, match="unknown comparison"):
        report.check("x", 1, "<", 2)


def test_figure_is_met_only_when_every_check_is():
    met = _fig("P2", 0.9)
    assert met["met"] and met["ratio"] == 0.9 and met["goal"] == ">= 0.5" and met["note"] == ""
    missed = _fig("P2", 0.3, why_missed="plan id hashing; hash orjson bytes")
    assert not missed["met"] and missed["note"] == "plan id hashing; hash orjson bytes"
    assert {"baseline", "command", "size", "measured", "checks"} <= set(missed)


def test_a_missed_figure_must_say_why():
    with pytest.raises(ValueError, match="must say why"):
        _fig("P2", 0.3)
    with pytest.raises(ValueError, match="at least one check"):
        report.figure("P9", "t", [], baseline="", command="", size="", measured={})


def test_document_is_json_with_a_closing_note_per_figure():
    broken = report.failed("P5", "canonize", "RuntimeError: node exploded\ntrace", "make bench")
    doc = report.document(
        "2026-12-03T12:00:00+00:00",
        {"cpu_count": 2},
        {"p7_raw": 20_000},
        [_fig("P2", 0.9), _fig("P3", 0.1, why_missed="paging")],
        {"P2": 1.0},
    )
    doc["figures"]["P5"] = broken
    json.loads(json.dumps(doc))
    assert not doc["all_met"]
    assert doc["summary"][0].startswith("P2 write path: ratio 0.9 (>= 0.5); rows 0 (== 0)")
    assert doc["summary"][0].endswith("-> met")
    assert doc["summary"][1].endswith("-> MISSED; paging")
    assert broken["ratio"] is None and broken["note"].startswith("not measured: RuntimeError")
    assert report.summary_line(broken).startswith("P5 canonize: not measured -> MISSED")


def test_readme_rows_of_figures_not_run_are_kept(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        f"# Bench\n\n{report.START}\n| P1 | old row | 0.03 |\n| P2 | stale |\n{report.END}\nend\n"
    )
    doc = report.document(
        "2026-12-03T12:00:00+00:00",
        {},
        {},
        [_fig("P2", 0.3, why_missed="a | pipe in the note")],
        {},
    )
    report.update_readme(readme, doc)
    text = readme.read_text()
    assert text.startswith("# Bench") and text.endswith(f"{report.END}\nend\n")
    rows = [line for line in text.splitlines() if line.startswith("| P")]
    assert rows[0] == "| P1 | old row | 0.03 |"
    assert rows[1].startswith("| P2 | write path: ratio / rows | 0.3 / 0 | >= 0.5 / == 0 | **no**")
    assert "a \\| pipe in the note" in rows[1] and "stale" not in text


def test_only_accepts_commas_and_repeats_in_run_order():
    import run

    assert run.selected([]) == list(run.FIGURES)
    assert run.selected(["p6,P5", "P1"]) == ["P1", "P5", "P6"]
    with pytest.raises(SystemExit, match="unknown figure"):
        run.selected(["P8"])
    quick = run.parse_args(["--quick", "--only", "P7"])
    assert quick.p7_raw == 20_000 and quick.only == ["P7"]
    assert run.parse_args([]).p7_raw == 1_000_000


def test_p5_says_so_when_npm_cannot_reach_its_registry(tmp_path, monkeypatch):
    import shutil

    import figure_canonize

    if not shutil.which("npm"):
        pytest.skip("npm is not installed here (the bench installs it from Debian)")
    # A loopback port nothing listens on: npm fails at once, no network is touched.
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    reason = figure_canonize._npm_install(tmp_path)
    assert reason is not None and reason.startswith("npm registry unreachable")
    fig = report.figure(
        "P5",
        "canonize",
        [report.check("ratio", None, ">=", 1.0)],
        baseline="npm jsonata",
        command="make bench ONLY=P5",
        size="10 docs",
        measured={"unavailable": reason},
        why_missed=f"the baseline could not be measured: {reason}",
    )
    assert fig["ratio"] is None and not fig["met"] and "unreachable" in fig["note"]
