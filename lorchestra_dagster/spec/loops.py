"""Pipeline ``loop`` stages: what a loop iterates over and each iteration's payload (pure).

``over: '@run.<job_id>.<path>'`` reads the output of a job that ran in an
earlier stage of the same pipeline run (its last step's output, kept in
memory only). Each item then gives one payload: ``@item.<path>`` values come
from the item, ``@payload.<path>`` from the pipeline's payload, anything else
is a literal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.spec.refs import Segment, _Missing, _walk, parse_ref

_ITEM_RE = re.compile(r"^@item((?:\.[A-Za-z0-9_\-]+|\[\d+\])*)$")
_PART_RE = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]")


def loop_source(over: str) -> tuple[str, tuple[Segment, ...]]:
    """``(job_id, path)`` of a loop's ``over`` reference.

    Raises:
        PermanentError: ``over`` is not ``@run.<job_id>.<path>``.
    """
    ref = parse_ref(over)
    if ref is None or ref.scope != "run" or ref.step_id is None:
        raise PermanentError(f"loop over {over!r}: expected @run.<job_id>.<path>")
    return ref.step_id, ref.subpath


def loop_items(over: str, outputs: Mapping[str, Any]) -> list[Any]:
    """The items a loop iterates: ``over`` followed into the captured job outputs."""
    job_id, path = loop_source(over)
    if job_id not in outputs:
        raise PermanentError(
            f"loop over {over!r}: job {job_id!r} has no output in this run "
            "(it must run, and succeed, in an earlier stage of the pipeline)"
        )
    try:
        value = _walk(outputs[job_id], path, f"@run.{job_id}")
    except _Missing as miss:
        raise PermanentError(f"loop over {over!r}: no {miss.segment!r} at {miss.at}") from None
    if not isinstance(value, list):
        raise PermanentError(f"loop over {over!r}: expected a list, got {type(value).__name__}")
    return value


def item_path(value: Any) -> tuple[Segment, ...] | None:
    """The path of an ``@item.<path>`` string, None for anything else."""
    if not isinstance(value, str):
        return None
    match = _ITEM_RE.match(value)
    if match is None:
        return None
    return tuple(name or int(index) for name, index in _PART_RE.findall(match.group(1)))


def iteration_payload(
    template: Mapping[str, Any], item: Any, payload: Mapping[str, Any], n: int
) -> dict[str, Any]:
    """The payload of iteration ``n``: ``template`` with ``@item``/``@payload`` resolved.

    The pipeline's payload is the base, so jobs of the loop also see keys the
    template does not name.
    """
    out = dict(payload)
    for key, value in template.items():
        out[key] = _resolve(value, item, payload, n)
    return out


def _resolve(value: Any, item: Any, payload: Mapping[str, Any], n: int) -> Any:
    if isinstance(value, dict):
        return {k: _resolve(v, item, payload, n) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, item, payload, n) for v in value]
    path = item_path(value)
    if path is not None:
        try:
            return _walk(item, path, "@item")
        except _Missing as miss:
            raise PermanentError(
                f"loop item {n}: {value} has no {miss.segment!r} at {miss.at}"
            ) from None
    ref = parse_ref(value)
    if ref is not None and ref.scope == "payload":
        try:
            return _walk(payload, ref.path, "@payload")
        except _Missing:
            if ref.optional:
                return None
            raise PermanentError(f"loop payload {value}: not in the pipeline's payload") from None
    return value
