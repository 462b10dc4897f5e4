"""Turn pydantic validation errors into located, coded issues.

Pydantic's ``loc`` mixes data keys with the names of union members and
discriminator tags (``('steps', 0, 'call', 'params', 'x')``). We walk the
loc along the raw data, keeping only segments that exist in it, so every
error lands on a YAML position. Union members that fail for shallow reasons
(``expected a string``) next to a member that got further are noise and are
dropped; what remains at one path is merged into one issue.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from lorchestra_dagster.spec.issues import Issue
from lorchestra_dagster.spec.models import STEP_BY_OP
from lorchestra_dagster.spec.refs import REF_PATTERN
from lorchestra_dagster.spec.yamlpos import YamlDoc, YamlPath

_INVALID_VALUE = (
    "literal_error",
    "string_pattern_mismatch",
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "too_short",
    "too_long",
    "enum",
)


def _data_path(data: Any, loc: tuple[Any, ...]) -> YamlPath:
    """The segments of ``loc`` that exist in ``data`` (union member names and tags drop out)."""
    path: list[str | int] = []
    cur = data
    for seg in loc:
        if isinstance(cur, dict) and seg in cur:
            path.append(seg)
            cur = cur[seg]
        elif isinstance(cur, list) and isinstance(seg, int) and 0 <= seg < len(cur):
            path.append(seg)
            cur = cur[seg]
    return tuple(path)


def _op_at(data: Any, path: YamlPath) -> str | None:
    """The op of the step ``path`` lies in (``steps[i]...``), if any."""
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
        step = data["steps"][path[1]]
        op = step.get("op") if isinstance(step, dict) else None
        return op if isinstance(op, str) else None
    return None


def dotted(path: YamlPath) -> str:
    """``steps[0].params.x``: how a YAML path reads in messages."""
    out = ""
    for seg in path:
        out += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if out else str(seg))
    return out or "(document)"


_REF_MSG = "or a reference (@ctx.x, @run.<step>.items, ...)"


def _msg(err: ErrorDetails) -> str:
    if (
        err["type"] == "string_pattern_mismatch"
        and err.get("ctx", {}).get("pattern") == REF_PATTERN
    ):
        return _REF_MSG
    if err["type"] == "literal_error" and not isinstance(err.get("input"), str):
        if repr(str(err.get("input"))) in str(err.get("ctx", {}).get("expected", "")):
            return err["msg"] + " (quote the value: YAML read it as a number)"
    return err["msg"]


def issues_from_validation_error(
    exc: ValidationError, doc: YamlDoc, file: str, *, kind: str = "job"
) -> list[Issue]:
    """Located issues for every error of ``exc`` raised validating ``doc.data``."""
    data = doc.data
    out: list[Issue] = []
    seen_paths: list[YamlPath] = []
    pending: dict[YamlPath, list[ErrorDetails]] = {}
    for err in exc.errors(include_url=False):
        etype = err["type"]
        loc = tuple(err["loc"])
        path = _data_path(data, loc)
        seen_paths.append(path)
        if etype == "extra_forbidden":
            pos = doc.pos(path, key=True)
            out.append(_issue(file, pos, "L010", f"unknown key {loc[-1]!r} in {dotted(path[:-1])}"))
        elif etype == "missing":
            op = _op_at(data, path)
            step = STEP_BY_OP.get(op) if isinstance(op, str) else None
            code = "L012"
            if step is not None and step.missing_param_code and path[2:] == ("params",):
                code = step.missing_param_code
            label = f"{op} param" if code != "L012" else "required field"
            where = f" in {dotted(path)}" if path else ""
            msg = f"missing {label} {loc[-1]!r}{where}"
            out.append(_issue(file, doc.pos(path), code, msg))
        elif etype == "union_tag_invalid":
            ctx = err.get("ctx", {})
            msg = f"unknown op {ctx.get('tag')!r} (expected one of {ctx.get('expected_tags', '')})"
            out.append(_issue(file, doc.pos((*path, "op")), "L030", msg))
        elif etype == "union_tag_not_found":
            msg = f"missing required field 'op' in {dotted(path)}"
            out.append(_issue(file, doc.pos(path), "L012", msg))
        else:
            pending.setdefault(path, []).append(err)
    for path, errs in pending.items():
        # A union member failing shallowly ("expected a string") next to one that got
        # deeper into the value is noise: the deeper error says what is wrong.
        if any(len(p) > len(path) and p[: len(path)] == path for p in seen_paths):
            continue
        wrong_type = any(e["type"] not in _INVALID_VALUE for e in errs)
        code = "L011" if wrong_type else "L013"
        msgs: list[str] = []
        for e in sorted(errs, key=lambda e: e["type"] == "string_pattern_mismatch"):
            if _msg(e) not in msgs:
                msgs.append(_msg(e))
        if msgs == [_REF_MSG]:
            msgs = ["expected a reference (@ctx.x, @run.<step>.items, ...)"]
        label = "wrong type" if wrong_type else "invalid value"
        text = f"{label} for {dotted(path)} ({_short(_get(data, path))}): " + "; ".join(msgs)
        out.append(_issue(file, doc.pos(path), code, text))
    return out


def _get(data: Any, path: YamlPath) -> Any:
    cur = data
    for seg in path:
        cur = cur[seg]
    return cur


def _short(value: Any) -> str:
    """Type and, for short scalars, the value (no payloads: catalog values are spec)."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _issue(file: str, pos: Any, code: str, message: str) -> Issue:
    return Issue(path=file, line=pos.line, col=pos.col, code=code, message=message)
