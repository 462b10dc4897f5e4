"""Step config values reach a derived-row transform as ``config``, as the original canonizer did.

The original's formation and projection transforms read ``$$.config.binding_id``
or ``config.sheet_name`` from their input: the canonizer put the step's
``config.transform_config`` on each row as ``config``, and the original's jobs
wrote those values next to ``transform_id``. Both spellings work here, on both
JSONata engines, checked against the transform's ``config_schema``.
"""

from __future__ import annotations

import pytest
from kit import write_transform

from lorchestra_dagster.callables import CallContext, get_callable
from lorchestra_dagster.callables.jsonata_engine import ENGINES
from lorchestra_dagster.errors import PermanentError

pytestmark = pytest.mark.unit

TID = "projection/rows_to_table@1.0.0"
# Shaped like the original's bq_rows_to_sheets_write_table: config read from the root
# of the input, both as config.x and as $$.config.x inside a function.
EXPR = """
{
  "idem_key": idem_key,
  "sheet_name": config.sheet_name,
  "strategy": config.strategy ? config.strategy : "replace",
  "binding_id": $map([1], function($n) { $$.config.binding_id })[0],
  "answers": $count(payload.answers)
}
"""
CONFIG_SCHEMA = """\
config_schema:
  required: [sheet_name]
  properties:
    sheet_name: {type: string}
    strategy: {type: string, enum: [replace, append]}
    binding_id: {type: string}
"""


def _catalog(root, config_schema: str = CONFIG_SCHEMA):
    schemas = {"iglu:org.canonical/any_row/jsonschema/1-0-0": {"type": "object"}}
    write_transform(root, TID, EXPR, schemas, meta="runtime: node\n" + config_schema)
    return root


def _run(root, config: dict, *, source_type: str = "projection", rows: list | None = None):
    params = {
        "source_type": source_type,
        "items": rows or [{"idem_key": "r1", "payload": {"answers": [1, 2]}}],
        "config": {"transform_id": TID, **config},
    }
    return get_callable("canonizer")(params, CallContext(catalog_dir=root, home=root, env={}))


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_config_next_to_transform_id_is_visible_on_both_engines(tmp_path, engine):
    out = _run(
        _catalog(tmp_path),
        {"sheet_name": "Clients", "binding_id": "intake_01", "engine": engine},
    )
    assert out["items"] == [
        {"idem_key": "r1", "sheet_name": "Clients", "strategy": "replace",
         "binding_id": "intake_01", "answers": 2}
    ]  # fmt: skip


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_config_transform_config_is_visible_on_both_engines(tmp_path, engine):
    config = {"engine": engine, "transform_config": {"sheet_name": "S", "strategy": "append"}}
    [row] = _run(_catalog(tmp_path), config)["items"]
    assert (row["sheet_name"], row["strategy"]) == ("S", "append")
    assert "binding_id" not in row  # absent config value: absent field, as in JSONata


def test_the_config_schema_is_checked_once_naming_the_key(tmp_path):
    root = _catalog(tmp_path)
    with pytest.raises(PermanentError, match=r"fails 'required' \['sheet_name'\]"):
        _run(root, {"binding_id": "intake_01"})
    with pytest.raises(PermanentError, match=r"\$\.strategy fails 'enum'") as err:
        _run(root, {"sheet_name": "S", "strategy": "merge"})
    assert "merge" not in str(err.value)  # the rule and the key, never the value


def test_a_key_given_twice_is_refused(tmp_path):
    with pytest.raises(PermanentError, match=r"both in config and in config.transform_config"):
        _run(_catalog(tmp_path), {"sheet_name": "A", "transform_config": {"sheet_name": "B"}})


def test_config_values_for_a_vendor_payload_are_refused_not_dropped(tmp_path):
    with pytest.raises(PermanentError, match="only for source_type formation or projection"):
        _run(_catalog(tmp_path, config_schema=""), {"sheet_name": "S"}, source_type="google_forms")


def test_a_row_with_its_own_config_column_fails_the_record(tmp_path):
    rows = [{"idem_key": "r1", "payload": {}, "config": {"sheet_name": "row's"}}]
    with pytest.raises(PermanentError, match=r"r1 \(config: the row has a 'config' column"):
        _run(_catalog(tmp_path), {"sheet_name": "S"}, rows=rows)


def test_without_config_values_the_row_is_unchanged(tmp_path):
    [row] = _run(_catalog(tmp_path, config_schema=""), {})["items"]
    assert "sheet_name" not in row and row["strategy"] == "replace"
