"""The op and plan-method registries, and the docs table generated from them."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import Field

from lorchestra_dagster.engine.handlers import HANDLERS
from lorchestra_dagster.engine.shaping import BUILDERS, PER_ITEM_BUILDERS, builds_per_item
from lorchestra_dagster.spec.models import OP_OUTPUTS, OPS, STEP_BY_OP, parse_step
from lorchestra_dagster.spec.params import PlanBuildParams, StoracleQueryParams
from lorchestra_dagster.spec.schema import methods_table
from lorchestra_dagster.spec.traits import CallableTraits
from lorchestra_dagster.spec.validate import PARAM_RULES
from lorchestra_dagster.storacle.method import PlanParams
from lorchestra_dagster.storacle.params import (
    PER_ITEM_METHODS,
    PLAN_PARAMS,
    InsertParams,
    parse_params,
)
from lorchestra_dagster.storacle.query import QueryParams

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
BLOCK = re.compile(r"(<!-- methods:begin -->\n)(.*?)(<!-- methods:end -->)", re.S)


def test_every_op_has_exactly_one_handler() -> None:
    assert set(HANDLERS) == set(OPS) == set(STEP_BY_OP)
    assert set(OP_OUTPUTS) == set(OPS) - {"call"}  # call's outputs are the callable's


def test_plan_build_can_build_every_plan_method() -> None:
    assert set(BUILDERS) == set(PLAN_PARAMS)


def test_every_per_item_method_and_only_those_builds_per_item() -> None:
    assert set(PER_ITEM_BUILDERS) == PER_ITEM_METHODS
    with pytest.raises(TypeError, match="no per-item mode"):
        builds_per_item(InsertParams)


def test_a_plan_method_is_one_class() -> None:
    """Subclassing registers the method; a second class for one name is refused."""
    before = dict(PlanParams.registry)
    try:

        class EchoParams(PlanParams):
            method = "test.echo"
            backend = "files"
            text: str = Field(description="Echoed")

        assert PLAN_PARAMS["test.echo"] is EchoParams
        assert isinstance(parse_params("test.echo", {"text": "x"}), EchoParams)
        with pytest.raises(TypeError, match="registered twice"):

            class Again(PlanParams):
                method = "test.echo"

    finally:
        PlanParams.registry.clear()
        PlanParams.registry.update(before)
    assert "test.echo" not in PLAN_PARAMS


def test_step_query_params_are_storacles_fields_plus_batching() -> None:
    """No copy: every QueryParams field is a step param, with the same description."""
    step = StoracleQueryParams.model_fields
    for name, info in QueryParams.model_fields.items():
        assert step[name].description == info.description
    assert set(step) - set(QueryParams.model_fields) == {"batch_key", "batch_rows"}
    # A reference is accepted where a value is, storacle's constraints still apply.
    ok = parse_step(
        {"step_id": "r", "op": "storacle.query",
         "params": {"dataset": "raw", "table": "t", "limit": "@ctx.n", "columns": "@ctx.c"}}
    )  # fmt: skip
    assert ok.params_dict() == {
        "dataset": "raw",
        "table": "t",
        "limit": "@ctx.n",
        "columns": "@ctx.c",
    }
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        parse_step({"step_id": "r", "op": "storacle.query",
                    "params": {"dataset": "raw", "table": "t", "limit": -1}})  # fmt: skip


def test_plan_build_offers_the_registrys_methods() -> None:
    schema = PlanBuildParams.model_json_schema()
    assert schema["properties"]["method"]["enum"] == sorted(PLAN_PARAMS)


def test_docs_table_is_the_registry() -> None:
    text = DOC.read_text(encoding="utf-8")
    match = BLOCK.search(text)
    assert match, "docs/architecture.md has no <!-- methods:begin --> ... end block"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        text = text[: match.start(2)] + methods_table() + text[match.end(2) :]
        DOC.write_text(text, encoding="utf-8")
        match = BLOCK.search(text)
        assert match
    assert match.group(2) == methods_table(), (
        "docs/architecture.md's methods table differs from the registry; "
        "UPDATE_SNAPSHOTS=1 pytest tests/spec/test_method_registry.py"
    )


def test_param_rules_are_keyed_by_registered_step_models() -> None:
    assert set(PARAM_RULES) <= set(STEP_BY_OP.values())


def test_a_callables_traits_drive_its_checks_not_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new callable that fetches a stream and packages targets needs no edit elsewhere:
    streams_of finds its stream and validation accepts its items for per-item mode."""
    from kit import write_catalog

    from lorchestra_dagster.callables import base, callable_traits, register, streams_of
    from lorchestra_dagster.spec import load_catalog, validate_catalog

    # the registration is this test's only: the registries are restored after it
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    monkeypatch.setattr(base, "_TRAITS", dict(base._TRAITS))

    @register("test_feed_reader", stream_param="feed", per_item_targets=True, external=True)
    def _reader(params: dict, ctx: object) -> dict:
        raise AssertionError("never run")

    job = (
        "job_id: feed_sync\nversion: '2.0'\nsteps:\n"
        "- step_id: fetch\n  op: call\n  params: {callable: test_feed_reader, feed: notes}\n"
        "- step_id: persist\n  op: plan.build\n"
        "  params: {method: sqlite.sync, items: '@run.fetch.items'}\n"
    )
    root = write_catalog(tmp_path / "cat", {"projection/feed_sync.yaml": job})
    assert streams_of(load_catalog(root).job("feed_sync").jobdef) == ["notes"]
    assert validate_catalog(root, callables=callable_traits()) == []
    plain = {**callable_traits(), "test_feed_reader": CallableTraits()}
    assert [i.code for i in validate_catalog(root, callables=plain)] == ["L043"]
