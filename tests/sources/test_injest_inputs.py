"""injest bad input (each a clear error naming the stream) and the jsonl drop folder."""

from __future__ import annotations

import hashlib

import pytest
import yaml
from sources_kit import REPO, run_injest, write_catalog

from lorchestra_dagster.errors import PermanentError

pytestmark = pytest.mark.unit
REPO_JOBS = REPO / "jobs"


def test_unknown_stream_lists_known_ones(catalog):
    with pytest.raises(PermanentError) as info:
        run_injest(catalog, "nope", {})
    assert "unknown stream 'nope'" in str(info.value) and "gmail_acct1" in str(info.value)
    assert "sources.yaml" in str(info.value)


def test_wrong_setting_type_names_stream_field_and_line(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    (root / "sources.yaml").write_text(
        "streams:\n  s1:\n    connector: stripe\n    resource: customers\n    page_size: lots\n"
    )
    with pytest.raises(PermanentError) as info:
        run_injest(root, "s1", {})
    err = info.value
    assert err.line == 2 and err.stream == "s1" and "page_size" in err.message


def test_unknown_setting_and_connector_rejected(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    (root / "sources.yaml").write_text(
        "streams:\n  a: {connector: gmail, token_env: T, colour: blue}\n  b: {connector: fax}\n"
    )
    with pytest.raises(PermanentError, match="colour"):
        run_injest(root, "a", {"T": "x"})
    with pytest.raises(PermanentError, match="unknown connector 'fax'"):
        run_injest(root, "b", {})


def test_missing_sources_file(tmp_path):
    with pytest.raises(PermanentError, match="no sources.yaml"):
        run_injest(tmp_path, "x", {})


def test_bad_cursor_value(catalog):
    with pytest.raises(PermanentError, match="config.since is not a timestamp"):
        run_injest(catalog, "drop_folder", {}, since="yesterday-ish")


def test_jsonl_reads_files_and_skips_consumed(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.jsonl").write_text('{"id": 1}\n\n{"id": 2}\n')
    (drop / "b.jsonl").write_text('{"id": 3}\n')
    (drop / "copy_of_b.jsonl").write_text('{"id": 3}\n')
    catalog = write_catalog(tmp_path / "c", drop_dir=drop)
    out = run_injest(catalog, "drop_folder", {})
    assert [i["id"] for i in out["items"]] == [1, 2, 3]
    assert [(f["path"], f["rows"]) for f in out["files"]] == [
        (str(drop / "a.jsonl"), 2),
        (str(drop / "b.jsonl"), 1),
    ]
    assert out["stats"]["skipped"] == 1  # identical bytes
    consumed = [
        {
            "file_sha256": hashlib.sha256((drop / "a.jsonl").read_bytes()).hexdigest(),
            "stream": "drop_folder",
        }
    ]
    again = run_injest(catalog, "drop_folder", {}, consumed=consumed)
    assert [i["id"] for i in again["items"]] == [3]


def test_jsonl_bad_line_names_file_and_line(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "x.jsonl").write_text('{"id": 1}\n[1, 2]\n')
    catalog = write_catalog(tmp_path / "c", drop_dir=drop)
    with pytest.raises(PermanentError) as info:
        run_injest(catalog, "drop_folder", {})
    assert info.value.line == 2 and info.value.file.endswith("x.jsonl")


def test_jsonl_relative_glob_resolves_against_the_catalog(tmp_path):
    catalog = tmp_path / "c"
    (catalog / "in").mkdir(parents=True)
    (catalog / "in" / "one.jsonl").write_text('{"id": "z"}\n')
    (catalog / "sources.yaml").write_text(
        yaml.safe_dump({"streams": {"mine": {"connector": "jsonl", "path": "in/*.jsonl"}}})
    )
    out = run_injest(catalog, "mine", {})
    assert out["files"][0]["path"] == "in/one.jsonl" and out["items"] == [{"id": "z"}]


def test_check_sources_collects_every_problem(tmp_path):
    from lorchestra_dagster.sources.catalog import check_sources

    assert check_sources(REPO_JOBS) == []
    root = tmp_path / "c"
    root.mkdir()
    assert check_sources(root) == []
    (root / "sources.yaml").write_text(
        "streams:\n  a: {connector: fax}\n  b: {connector: stripe}\n"
        "  c: {connector: jsonl, path: x/*.jsonl}\n"
    )
    problems = check_sources(root)
    assert [(p.stream, p.line) for p in problems] == [("a", 2), ("b", 3)]
