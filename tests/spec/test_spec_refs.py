"""References: parsing, compile-time and run-time resolution."""

from __future__ import annotations

import pytest

from lorchestra_dagster.errors import CompileError, PermanentError
from lorchestra_dagster.spec import Envelope, parse_ref, resolve_compile_refs, resolve_run_refs
from lorchestra_dagster.spec.refs import iter_refs, looks_like_ref

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "scope", "path", "optional"),
    [
        ("@ctx.a.b", "ctx", ("a", "b"), False),
        ("@payload.window.since?", "payload", ("window", "since"), True),
        ("@self.query", "self", ("query",), False),
        ("@run.cursor.items[0].since", "run", ("cursor", "items", 0, "since"), False),
        ("@run.read.items[2][1]", "run", ("read", "items", 2, 1), False),
        ("@run.envelope.ctx.day", "run", ("envelope", "ctx", "day"), False),
        ("@run.read", "run", ("read",), False),
        ("@payload", "payload", (), False),
        ("@run.x.items.0", "run", ("x", "items", "0"), False),
    ],
)
def test_parse_ref(text, scope, path, optional):
    ref = parse_ref(text)
    assert ref is not None
    assert (ref.scope, ref.path, ref.optional, ref.raw) == (scope, path, optional, text)


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "@ctx.a extra",
        "prefix @ctx.a",
        "@ctx.",
        "@ctx..a",
        "@self",
        "@run",
        "@other.a",
        "user@example.test",
        "@ctx.a[x]",
        "@ctx.a??",
        5,
        None,
    ],
)
def test_not_a_ref(text):
    assert parse_ref(text) is None


def test_looks_like_ref_flags_malformed_only_for_known_scopes():
    assert looks_like_ref("@ctx..a") and parse_ref("@ctx..a") is None
    assert not looks_like_ref("@mention")
    assert not looks_like_ref("email@ctx.test")


def test_step_id_and_subpath():
    ref = parse_ref("@run.cursor.items[0].since")
    assert ref.step_id == "cursor" and ref.subpath == ("items", 0, "since")
    assert parse_ref("@ctx.a").step_id is None


ENV = Envelope(job_id="j", ctx={"day": "2026-11-29", "nested": {"k": [10, 20]}}, payload={"n": 3})


def test_resolve_compile_refs_recursive_and_leaves_run_refs():
    value = {
        "a": "@ctx.day",
        "b": ["@payload.n", {"c": "@ctx.nested.k[1]"}, "@ctx.nested.k.0"],
        "d": "@run.read.items",
        "e": "@self.table",
        "f": "not @ctx.day",
        "g": "@ctx.missing?",
    }
    out = resolve_compile_refs(value, ENV, {"table": "clients"})
    assert out == {
        "a": "2026-11-29",
        "b": [3, {"c": 20}, 10],
        "d": "@run.read.items",
        "e": "clients",
        "f": "not @ctx.day",
        "g": None,
    }
    assert value["a"] == "@ctx.day"  # input untouched


def test_self_extra_may_hold_refs_and_yaml_files(tmp_path):
    (tmp_path / "q.yaml").write_text("table: '@ctx.day'\n")
    extras = {"indirect": "@payload.n", "query": "q.yaml"}
    assert resolve_compile_refs("@self.indirect", ENV, extras) == 3
    assert resolve_compile_refs("@self.query.table", ENV, extras, tmp_path) == "2026-11-29"


def test_self_loop_is_an_error():
    with pytest.raises(CompileError, match="nest too deeply"):
        resolve_compile_refs("@self.a", ENV, {"a": "@self.a"})


@pytest.mark.parametrize(
    ("ref", "segment"),
    [("@ctx.nope", "'nope'"), ("@ctx.nested.zz", "'zz'"), ("@ctx.nested.k[5]", "[5]")],
)
def test_missing_compile_ref_names_ref_and_segment(ref, segment):
    with pytest.raises(CompileError) as info:
        resolve_compile_refs({"x": ref}, ENV, {})
    assert ref in str(info.value) and segment in str(info.value)
    assert info.value.code == "REF_MISSING"


def test_resolve_run_refs():
    outputs = {"cursor": {"items": [{"since": 42}]}, "read": {"items": [1, 2]}}
    value = {
        "since": "@run.cursor.items[0].since",
        "items": "@run.read.items",
        "day": "@run.envelope.ctx.day",
        "maybe": "@run.cursor.items[3].since?",
        "ghost": "@run.never.items?",
        "lit": "x",
    }
    out = resolve_run_refs(value, outputs, ENV)
    assert out == {
        "since": 42,
        "items": [1, 2],
        "day": "2026-11-29",
        "maybe": None,
        "ghost": None,
        "lit": "x",
    }
    assert resolve_run_refs("@run.envelope.job_id", {}, ENV.model_dump()) == "j"


def test_missing_run_ref_is_permanent_and_named():
    with pytest.raises(PermanentError, match=r"@run.cursor.items\[0\].since.*\[0\]"):
        resolve_run_refs("@run.cursor.items[0].since", {"cursor": {"items": []}}, ENV)
    with pytest.raises(PermanentError, match="step 'gone' has no output"):
        resolve_run_refs("@run.gone.items", {}, ENV)
    with pytest.raises(PermanentError, match="compile time"):
        resolve_run_refs("@ctx.day", {}, ENV)


def test_iter_refs_finds_nested():
    found = [r.raw for r in iter_refs({"a": ["@run.x.items", {"b": "@ctx.y"}], "c": "z"})]
    assert found == ["@run.x.items", "@ctx.y"]
