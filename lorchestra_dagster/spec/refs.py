"""``@`` references: the one way a step's params point at data they do not hold.

Grammar (a param value is a reference only when the *whole* string is one)::

    @ctx.a.b            envelope ctx            (compile time)
    @payload.a.b        envelope payload        (compile time)
    @self.a             a top-level extra of the JobDef (compile time)
    @run.<step>.path    an earlier step's output (run time), ``[n]`` or ``.n`` indexes lists
    @run.envelope.path  the envelope as a dict  (run time)

A trailing ``?`` makes the reference optional: a missing key resolves to
``None`` instead of failing, so one job serves both the daily run and a
backfill window. Resolution is recursive over dicts and lists and never
mutates its input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from lorchestra_dagster.errors import CompileError, PermanentError

Scope = Literal["ctx", "payload", "self", "run"]
SCOPES: tuple[str, ...] = ("ctx", "payload", "self", "run")
COMPILE_SCOPES: frozenset[str] = frozenset({"ctx", "payload", "self"})

_NAME = r"[A-Za-z0-9_\-]+"
_SEGMENT = rf"{_NAME}(?:\[\d+\])*"
#: Pattern a reference string matches as a whole (exported for the JSON Schema).
REF_PATTERN = rf"^@(?:ctx|payload|self|run)(?:\.{_SEGMENT})*\??$"
_REF_RE = re.compile(REF_PATTERN)
_PART_RE = re.compile(rf"({_NAME})|\[(\d+)\]")
#: Strings that start like a reference; validation flags those that do not parse.
REF_PREFIX_RE = re.compile(r"^@(?:ctx|payload|self|run)\b")

Segment = str | int


@dataclass(frozen=True)
class Ref:
    """A parsed reference.

    ``path`` holds dict keys (str) and list indexes (int, from ``[n]``). For
    ``@run`` references the first element of ``path`` is the step id (or
    ``envelope``); see ``step_id``/``subpath``.
    """

    scope: Scope
    path: tuple[Segment, ...]
    optional: bool
    raw: str

    @property
    def is_compile_time(self) -> bool:
        return self.scope in COMPILE_SCOPES

    @property
    def step_id(self) -> str | None:
        """Step a ``@run`` reference reads (``envelope`` for the envelope), else None."""
        if self.scope != "run" or not self.path:
            return None
        head = self.path[0]
        return head if isinstance(head, str) else None

    @property
    def subpath(self) -> tuple[Segment, ...]:
        """Path below the step id for ``@run`` references, the whole path otherwise."""
        return self.path[1:] if self.scope == "run" else self.path


def parse_ref(value: Any) -> Ref | None:
    """Parse ``value`` as a reference; None when it is not exactly one reference.

    >>> parse_ref("@run.cursor.items[0].since").path
    ('cursor', 'items', 0, 'since')
    """
    if not isinstance(value, str) or not value.startswith("@"):
        return None
    if not _REF_RE.match(value):
        return None
    optional = value.endswith("?")
    body = value[1:-1] if optional else value[1:]
    scope, _, rest = body.partition(".")
    path: list[Segment] = []
    if rest:
        for dotted in rest.split("."):
            for name, index in _PART_RE.findall(dotted):
                path.append(name if name else int(index))
    if scope == "self" and not path:
        return None
    if scope == "run" and not path:
        return None
    return Ref(scope=scope, path=tuple(path), optional=optional, raw=value)  # type: ignore[arg-type]


def looks_like_ref(value: Any) -> bool:
    """True for strings that start like a reference (``@ctx...``), parseable or not."""
    return isinstance(value, str) and bool(REF_PREFIX_RE.match(value))


def iter_refs(value: Any) -> Iterator[Ref]:
    """Every reference inside ``value`` (recursive over dicts and lists)."""
    if isinstance(value, str):
        ref = parse_ref(value)
        if ref is not None:
            yield ref
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from iter_refs(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from iter_refs(item)


class _Missing(Exception):
    def __init__(self, segment: Segment, at: str) -> None:
        super().__init__(segment)
        self.segment = segment
        self.at = at


def _walk(root: Any, path: tuple[Segment, ...], prefix: str) -> Any:
    """Follow ``path`` into ``root``; ``.n`` on a list indexes it like ``[n]``."""
    cur = root
    seen = prefix
    for seg in path:
        if isinstance(cur, Mapping):
            key = seg if isinstance(seg, str) else str(seg)
            if key not in cur:
                raise _Missing(seg, seen)
            cur = cur[key]
        elif isinstance(cur, list | tuple):
            try:
                idx = seg if isinstance(seg, int) else int(seg)
            except ValueError:
                raise _Missing(seg, seen) from None
            if not 0 <= idx < len(cur):
                raise _Missing(seg, seen)
            cur = cur[idx]
        else:
            raise _Missing(seg, seen)
        seen = f"{seen}[{seg}]" if isinstance(seg, int) else f"{seen}.{seg}"
    return cur


def _as_dict(envelope: Any) -> dict[str, Any]:
    if envelope is None:
        return {}
    if isinstance(envelope, Mapping):
        return dict(envelope)
    if isinstance(envelope, BaseModel):
        return envelope.model_dump(mode="json")
    raise TypeError(f"envelope must be a mapping or an Envelope, got {type(envelope).__name__}")


def load_extra_file(value: str, catalog_dir: str | Path) -> Any:
    """Load an ``@self`` extra that names a YAML file relative to the catalog."""
    path = Path(catalog_dir) / value
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CompileError(
            f"@self extra file {value!r} not found under the catalog", file=str(path)
        ) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CompileError(
            f"@self extra file {value!r} is not valid YAML: {exc}", file=str(path)
        ) from exc


def _ref_error(cls: type[PermanentError], ref: Ref, miss: _Missing) -> PermanentError:
    seg = f"[{miss.segment}]" if isinstance(miss.segment, int) else repr(miss.segment)
    return cls(
        f"reference {ref.raw} cannot be resolved: {seg} is missing under {miss.at} "
        f"(add it, or end the reference with '?' to accept a missing value)",
        code="REF_MISSING",
    )


_MAX_DEPTH = 10


def resolve_compile_refs(
    value: Any,
    envelope: Any,
    extras: Mapping[str, Any] | None = None,
    catalog_dir: str | Path | None = None,
    *,
    _depth: int = 0,
) -> Any:
    """Replace ``@ctx``/``@payload``/``@self`` references; leave ``@run`` ones as strings.

    A value reached through ``@self`` is resolved again (an extra may hold
    references itself). An extra whose value is a string ending in ``.yaml``
    is loaded from that file under ``catalog_dir`` when one is given.

    Raises:
        CompileError: a referenced key is missing (naming the reference and the
            missing segment), or ``@self`` references loop.
    """
    if _depth > _MAX_DEPTH:
        raise CompileError("references nest too deeply (a @self extra refers to itself?)")
    if isinstance(value, str):
        ref = parse_ref(value)
        if ref is None or not ref.is_compile_time:
            return value
        env = _as_dict(envelope)
        if ref.scope == "self":
            root: Any = dict(extras or {})
            head = ref.path[0]
            if isinstance(head, str) and head in root:
                extra = root[head]
                if isinstance(extra, str) and extra.endswith(".yaml") and catalog_dir is not None:
                    root[head] = load_extra_file(extra, catalog_dir)
        else:
            root = env.get(ref.scope) or {}
        try:
            found = _walk(root, ref.path, f"@{ref.scope}")
        except _Missing as miss:
            if ref.optional:
                return None
            raise _ref_error(CompileError, ref, miss) from None
        return resolve_compile_refs(found, envelope, extras, catalog_dir, _depth=_depth + 1)
    if isinstance(value, Mapping):
        return {
            k: resolve_compile_refs(v, envelope, extras, catalog_dir, _depth=_depth)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [
            resolve_compile_refs(v, envelope, extras, catalog_dir, _depth=_depth) for v in value
        ]
    return value


def resolve_run_refs(value: Any, outputs: Mapping[str, Any], envelope: Any) -> Any:
    """Replace ``@run`` references with step outputs (or the envelope) at run time.

    ``outputs`` maps step ids to their output dicts. Compile-time references
    must already be gone; one that is still here is a bug upstream and fails.

    Raises:
        PermanentError: a referenced step or key is missing (naming both).
    """
    if isinstance(value, str):
        ref = parse_ref(value)
        if ref is None:
            return value
        if ref.scope != "run":
            raise PermanentError(f"reference {ref.raw} should have been resolved at compile time")
        step = ref.step_id
        if step == "envelope":
            root = _as_dict(envelope)
        elif step is not None and step in outputs:
            root = outputs[step]
        else:
            if ref.optional:
                return None
            raise PermanentError(
                f"reference {ref.raw} cannot be resolved: step {step!r} has no output "
                f"(known: {', '.join(sorted(outputs)) or 'none'})",
                code="REF_MISSING",
                step_id=step,
            )
        try:
            return _walk(root, ref.subpath, f"@run.{step}")
        except _Missing as miss:
            if ref.optional:
                return None
            raise _ref_error(PermanentError, ref, miss) from None
    if isinstance(value, Mapping):
        return {k: resolve_run_refs(v, outputs, envelope) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve_run_refs(v, outputs, envelope) for v in value]
    return value
