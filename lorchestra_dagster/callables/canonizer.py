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

from jsonschema import Draft202012Validator

from lorchestra_dagster.callables.base import CallContext, enforce_error_budget, register, result
from lorchestra_dagster.callables.jsonata_engine import DEFAULT_ENGINE
from lorchestra_dagster.callables.transforms import (
    RecordError,
    Transform,
    first_error,
    load_transform,
)
from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.settings import Settings

PASSTHROUGH = ("idem_key", "source_system", "connection_name", "object_type", "correlation_id")
SAMPLE_SIZE = 5
#: source_type values whose items are derived rows, not raw objects (the original's
#: formation and projection transforms): the transform's output shape is the item's.
ROW_SOURCE_TYPES = frozenset({"formation", "projection"})
#: ``config`` keys the canonizer reads itself; every other key is a value for the transform.
OWN_CONFIG = frozenset(
    {"transform_id", "validate_input", "validate_output", "error_budget", "engine", "schemas_dir",
     "transform_config"}
)  # fmt: skip


def transform_config(config: dict[str, Any], transform: Transform) -> dict[str, Any]:
    """The values a derived-row transform reads as ``config.<key>`` of its input.

    As in the original canonizer, ``config.transform_config`` is handed to the
    expression as the ``config`` key of each row; the original's jobs also wrote
    these values (``binding_id``, ``sheet_name``, ...) next to ``transform_id``,
    so those count too. A transform that declares ``config_schema`` has them
    checked against it once per step (naming the key, never the value).
    """
    nested = config.get("transform_config") or {}
    if not isinstance(nested, dict):
        raise PermanentError("canonizer: config.transform_config must be a mapping")
    loose = {k: v for k, v in config.items() if k not in OWN_CONFIG}
    both = sorted(set(loose) & set(nested))
    if both:
        raise PermanentError(
            f"canonizer: config keys {both} are given both in config and in "
            "config.transform_config; keep one"
        )
    values = {**loose, **nested}
    schema = transform.meta.config_schema
    if schema:
        problem = first_error(Draft202012Validator({"type": "object", **schema}), values)
        if problem:
            raise PermanentError(
                f"canonizer {transform.transform_id}: config values: {problem} "
                "(checked against the transform's config_schema; $ is the config)",
                code="E_PARAMS",
            )
    return values


def _flag(config: dict[str, Any], name: str) -> bool:
    value = config.get(name, True)
    if not isinstance(value, bool):
        raise PermanentError(f"canonizer: config.{name} must be true or false")
    return value


def _parsed(payload: Any) -> Any:
    """The payload as an object. The catalog's canonize reads leave it JSON text, so a
    page of rows costs the garbage collector one string each and a row's object graph
    lives only while that row is transformed."""
    if isinstance(payload, str):
        try:
            return json.loads(payload)
        except json.JSONDecodeError:
            raise RecordError("payload", "payload is not valid JSON") from None
    return payload


@register("canonizer", transform_key="transform_id", per_item_transforms="projection/")
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
        config.transform_config, and any other config key: values the transform reads
            as ``config.<key>`` (derived rows only; see :func:`transform_config`).
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
    values = transform_config(config, transform)
    if values and not rows_mode:
        # A vendor payload gets no config (as in the original): say so rather than drop it.
        raise PermanentError(
            f"canonizer: config keys {sorted(values)} reach the transform only for "
            "source_type formation or projection (derived rows)",
            code="E_PARAMS",
        )
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
                # Derived rows: the transform reads the whole row (with the step's config
                # values as ``config``) and its output is the row.
                doc = {**row, "payload": payload}
                if values:
                    if "config" in row:
                        raise RecordError("config", "the row has a 'config' column of its own")
                    doc["config"] = values
                shaped = transform.apply(doc, **checks)
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
