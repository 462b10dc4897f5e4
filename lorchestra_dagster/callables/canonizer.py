"""The ``canonizer`` callable: raw rows -> canonical rows through a JSONata transform.

The transform sees only the payload; the row's identity (idem_key,
source_system, connection_name, object_type, correlation_id) passes through, so
a transform cannot change where its output lands. The suffix and the canonical
columns are added later by ``plan.build`` (``idem_key_suffix``, ``field_defaults``).

A record that fails (input schema, JSONata error, output schema) is counted and
sampled by idem_key only, never by payload; the step fails when failures exceed
``config.error_budget`` (default 0: any failure fails the job).
"""

from __future__ import annotations

import json
from typing import Any

from lorchestra_dagster.callables.base import CallContext, enforce_error_budget, register, result
from lorchestra_dagster.callables.jsonata_engine import DEFAULT_ENGINE
from lorchestra_dagster.callables.transforms import RecordError, load_transform
from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.settings import Settings

PASSTHROUGH = ("idem_key", "source_system", "connection_name", "object_type", "correlation_id")
SAMPLE_SIZE = 5
#: source_type values whose items are derived rows, not raw objects (the original's
#: formation and projection transforms): the transform's output shape is the item's.
ROW_SOURCE_TYPES = frozenset({"formation", "projection"})


def _flag(config: dict[str, Any], name: str) -> bool:
    value = config.get(name, True)
    if not isinstance(value, bool):
        raise PermanentError(f"canonizer: config.{name} must be true or false")
    return value


def _parsed(payload: Any) -> Any:
    if isinstance(payload, str):
        try:
            return json.loads(payload)
        except json.JSONDecodeError:
            raise RecordError("payload", "payload is not valid JSON") from None
    return payload


@register("canonizer")
def run(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """Canonize ``params.items`` with ``params.config.transform_id``.

    Params:
        source_type: the vendor the items come from (checked against each item's
            ``source_system`` when given, so a job wired to the wrong transform fails);
            ``formation`` or ``projection``: the items are derived rows, the transform
            reads each whole row and returns the output row (or a list of rows).
        config.validate_input / config.validate_output: check the transform's
            from/to schemas (default true).
        items: raw rows with ``payload`` (object or JSON text).
        config.transform_id: ``domain/name@version``.
        config.error_budget: failures tolerated before the step fails (default 0).
        config.engine: JSONata engine override (default: env
            ``LORCHESTRA_JSONATA_ENGINE`` or jsonatapy).
    """
    config = params.get("config") or {}
    transform_id = config.get("transform_id")
    if not transform_id:
        raise PermanentError("canonizer: config.transform_id is required", code="E_PARAMS")
    budget = config.get("error_budget", 0)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
        raise PermanentError("canonizer: config.error_budget must be an integer >= 0")
    engine = config.get("engine") or Settings.from_env(ctx.env).jsonata_engine or DEFAULT_ENGINE
    source_type = params.get("source_type")
    if "items" not in params:
        # The original's oldest canonize jobs had no read step; here a canonizer only
        # transforms what it is given, so running with nothing wired in is an error.
        raise PermanentError(
            "canonizer: no 'items' param; read the rows first (a storacle.query step) and "
            "pass them as items: '@run.<step>.items'",
            code="E_PARAMS",
        )
    items = params.get("items") or []
    transform = load_transform(ctx.catalog_dir, transform_id, engine=engine)

    out: list[dict[str, Any]] = []
    skipped = 0
    failures: list[dict[str, Any]] = []
    errors = 0
    checks = {
        "validate_input": _flag(config, "validate_input"),
        "validate_output": _flag(config, "validate_output"),
    }
    rows_mode = source_type in ROW_SOURCE_TYPES
    for row in items:
        try:
            if (
                not rows_mode
                and source_type
                and row.get("source_system")
                not in (
                    None,
                    source_type,
                )
            ):
                raise RecordError("source_type", f"source_system is not {source_type!r}")
            payload = _parsed(row.get("payload"))
            if rows_mode:
                # Derived rows: the transform reads the whole row and its output is the row.
                shaped = transform.apply({**row, "payload": payload}, **checks)
                new = shaped if isinstance(shaped, list) else [] if shaped is None else [shaped]
                if not new:
                    skipped += 1
                for n, one in enumerate(new):
                    if not isinstance(one, dict):
                        raise RecordError("output", f"output {n} is not an object")
                out.extend(new)
                continue
            canonical = transform.apply(payload, **checks)
        except RecordError as exc:
            errors += 1
            if len(failures) < SAMPLE_SIZE:
                failures.append(
                    {"idem_key": row.get("idem_key"), "stage": exc.stage, "error": exc.detail}
                )
            continue
        if canonical is None:
            skipped += 1
            continue
        item = {key: row.get(key) for key in PASSTHROUGH}
        item["payload"] = canonical
        out.append(item)

    enforce_error_budget(
        f"canonizer {transform_id}", errors, len(items), budget, failures, "E_CANONIZE"
    )
    return result(
        out,
        input=len(items),
        skipped=skipped,
        errors=errors,
        failures=failures,
        transform_id=transform_id,
    )
