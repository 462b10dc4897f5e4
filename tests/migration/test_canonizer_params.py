"""canonizer params as the original wrote them: ``source_type: formation | projection``
(whole rows in, the transform's own shape out), ``validate_input`` / ``validate_output``."""

from __future__ import annotations

import json

import pytest
from kit import write_transform

from lorchestra_dagster.callables import CallContext, get_callable
from lorchestra_dagster.callables.transforms import schema_path
from lorchestra_dagster.errors import PermanentError

pytestmark = pytest.mark.unit

TID = "formation/measurement_event_to_rows@1.0.0"
# One measurement event row in, one observation row per answer out (a list).
EXPR = """
[$map(payload.answers, function($a) {
  {"idem_key": $$.idem_key & ":" & $a.q, "measurement_event_id": $$.idem_key, "value": $a.v}
})]
"""


def _catalog(root):
    strict = {"type": "object", "required": ["never_there"]}
    schemas = {
        "iglu:org.canonical/measurement_event/jsonschema/1-0-0": strict,
        "iglu:org.canonical/observation_rows/jsonschema/1-0-0": {"type": "array"},
    }
    write_transform(root, TID, EXPR, schemas)
    return root


def _run(root, **config):
    rows = [
        {
            "idem_key": "me1",
            "source_system": "google_forms",
            "payload": json.dumps({"answers": [{"q": "q1", "v": 2}, {"q": "q2", "v": 0}]}),
        },
        {"idem_key": "me2", "source_system": "google_forms", "payload": {"answers": []}},
    ]
    params = {
        "source_type": "formation",
        "items": rows,
        "config": {"transform_id": TID, "binding_id": "intake_01", **config},
    }
    ctx = CallContext(catalog_dir=root, home=root / "home", env={})
    return get_callable("canonizer")(params, ctx)


def test_formation_rows_in_transform_shape_out(tmp_path):
    out = _run(_catalog(tmp_path), validate_input=False)
    assert out["items"] == [
        {"idem_key": "me1:q1", "measurement_event_id": "me1", "value": 2},
        {"idem_key": "me1:q2", "measurement_event_id": "me1", "value": 0},
    ]
    # me2 gave an empty list: skipped, not an error; no source_system check for formation
    assert out["stats"] == {"input": 2, "output": 2, "skipped": 1, "errors": 0}


def test_validate_input_true_by_default_checks_the_schema(tmp_path):
    with pytest.raises(PermanentError, match="input_schema"):
        _run(_catalog(tmp_path))


def test_validate_output_false_skips_the_output_schema(tmp_path):
    root = _catalog(tmp_path)
    path = schema_path(root, "iglu:org.canonical/observation_rows/jsonschema/1-0-0")
    path.write_text(json.dumps({"type": "object"}))  # the list output now fails it
    with pytest.raises(PermanentError, match="output_schema"):
        _run(root, validate_input=False)
    assert len(_run(root, validate_input=False, validate_output=False)["items"]) == 2


def test_projection_rows_pass_whole(tmp_path):
    root = _catalog(tmp_path)
    out = get_callable("canonizer")(
        {
            "source_type": "projection",
            "items": [{"idem_key": "x", "payload": {"answers": [{"q": "a", "v": 1}]}}],
            "config": {"transform_id": TID, "validate_input": False},
        },
        CallContext(catalog_dir=root, home=root / "home", env={}),
    )
    assert out["items"] == [{"idem_key": "x:a", "measurement_event_id": "x", "value": 1}]


def test_a_canonizer_with_no_items_wired_in_fails_loudly(tmp_path):
    root = _catalog(tmp_path)
    with pytest.raises(PermanentError, match="no 'items' param"):
        get_callable("canonizer")(
            {"source_type": "dataverse", "config": {"transform_id": TID}},
            CallContext(catalog_dir=root, home=root / "home", env={}),
        )
