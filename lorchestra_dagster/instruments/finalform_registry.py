"""The original finalform's JSON registries, read into this project's instrument models.

``<catalog>/measure-registry/measures/<measure_id>/<1-0-0>.json`` holds a
``measure_spec`` (items with their own ``response_map``, scales naming items
by ``item_id``, ``interpretations`` as bands) and
``<catalog>/form-binding-registry/bindings/<binding_id>/<1-0-0>.json`` a
``form_binding_spec`` (sections binding items ``by: field_key`` to question
ids). Each is converted to an ``Instrument`` / ``Binding``, so the model's
checks apply unchanged (every achievable score in exactly one band) and the
one scorer scores them. The highest version of each id is used.

An item's response ``aliases`` (``{alias text: option text}``) become the
aliases of that option, so the one scorer resolves an alias answer to the
option's value (an alias naming no option is refused on load). Bindings ``by:
field_key`` bind the question id, ``by: position`` the question's position in
the form and ``by: text`` its wording; all three get the same checks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.instruments.models import (
    Binding,
    Instrument,
    RuleCondition,
    SafetyRule,
    normalise_text,
)

MEASURES_DIR = Path("measure-registry") / "measures"
BINDINGS_DIR = Path("form-binding-registry") / "bindings"
#: Item-level safety rules an imported spec gets when it declares none: a risk answer
#: must reach the clinician whichever registry the instrument came from. They are the
#: rules of the shipped ``jobs/instruments/<code>.yaml`` (a test keeps them equal).
SAFETY_RULES: dict[str, list[SafetyRule]] = {
    "phq9": [
        SafetyRule(
            code="phq9_item9",
            item=9,
            condition=RuleCondition(op=">=", value=1),
            severity="critical",
            message="PHQ-9 item 9 (thoughts of death or self-harm) answered above "
            "'Not at all'; assess risk.",
        ),
        SafetyRule(
            code="phq9_item9_unanswered",
            item=9,
            condition=RuleCondition(op="unanswered"),
            severity="high",
            message="PHQ-9 item 9 (thoughts of death or self-harm) left unanswered or "
            "unreadable; ask about it.",
        ),
    ]
}
_FORM_PREFIX = re.compile(r"^[a-z]+::")
#: The original's ``by`` values and the ``QuestionBinding`` field each one fills.
_BY = {"field_key": "question_id", "position": "position", "text": "question_text"}


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.stem))


def latest_files(root: Path, sub: Path) -> dict[str, Path]:
    """``{id: newest <version>.json}`` under ``root/sub/<id>/``."""
    out: dict[str, Path] = {}
    base = root / sub
    if not base.is_dir():
        return out
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.json"), key=_version_key)
        if files:
            out[folder.name] = files[-1]
    return out


def _read(path: Path, kind: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PermanentError(f"invalid JSON: {exc}", file=str(path), code="E_SPEC") from exc
    if not isinstance(data, dict) or data.get("type") != kind:
        raise PermanentError(f"not a {kind} (type must be {kind!r})", file=str(path))
    return data


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.casefold()).strip("_") or "band"


def _bad(path: Path, message: str) -> PermanentError:
    """A registry file that cannot be read as the original meant it, naming the file."""
    return PermanentError(message, file=str(path), code="E_SPEC")


def _invalid(path: Path, what: str, exc: ValidationError | ValueError) -> PermanentError:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        msg = f"{first['msg']} at {'.'.join(str(p) for p in first['loc']) or '<root>'}"
    else:
        msg = str(exc)
    return PermanentError(f"{what} invalid: {msg}", file=str(path), code="E_SPEC")


def measure_to_instrument(data: dict[str, Any], path: Path) -> Instrument:
    """One ``measure_spec`` as an ``Instrument`` (raises PermanentError naming the file)."""
    items = sorted(data.get("items") or [], key=lambda it: it.get("position", 0))
    position = {it["item_id"]: it["position"] for it in items}
    sets: dict[str, list[dict[str, Any]]] = {}
    set_of: dict[int, str] = {}
    for it in items:
        options = _options(it, path)
        name = next((n for n, opts in sets.items() if opts == options), f"set{len(sets) + 1}")
        sets.setdefault(name, options)
        set_of[it["position"]] = name
    try:
        scales = []
        for sc in data.get("scales") or []:
            scales.append(
                {
                    "code": sc["scale_id"],
                    "name": sc.get("name") or sc["scale_id"],
                    "items": [position[i] for i in sc["items"]],
                    "method": sc.get("method", "sum"),
                    "reversed": [position[i] for i in sc.get("reversed_items") or []],
                    "missing_allowed": sc.get("missing_allowed", 0),
                    "min": sc["min"],
                    "max": sc["max"],
                    "bands": [
                        {
                            "min": b["min"],
                            "max": b["max"],
                            "label": b["label"],
                            "code": _slug(b["label"]),
                        }
                        for b in sc.get("interpretations") or []
                    ],
                }
            )
    except KeyError as exc:
        raise PermanentError(
            f"measure_spec scale refers to unknown item or lacks {exc}", file=str(path)
        ) from None
    scored = {p for sc in scales for p in sc["items"]}
    spec = {
        "code": data.get("measure_id"),
        "version": data.get("version"),
        "name": data.get("name") or data.get("measure_id"),
        "description": data.get("description") or "",
        "source": data.get("source")
        or f"Imported from the original finalform measure registry ({path.name} of "
        f"{data.get('measure_id')}); that spec records no citation.",
        "response_sets": sets,
        "items": [
            {
                "position": it["position"],
                "text": it.get("text") or "",
                "response_set": set_of[it["position"]],
                "scored": it["position"] in scored,
            }
            for it in items
        ],
        "scales": scales,
        "safety_rules": _safety_rules(data),
    }
    try:
        return Instrument.model_validate(spec)
    except (ValidationError, ValueError) as exc:
        raise _invalid(path, "measure_spec", exc) from exc


def _options(item: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """An item's ``response_map`` as options, each with the aliases that name it."""
    response_map = item.get("response_map") or {}
    by_text = {normalise_text(t): t for t in response_map}
    aliases: dict[str, list[str]] = {t: [] for t in response_map}
    for alias, target in (item.get("aliases") or {}).items():
        option = by_text.get(normalise_text(str(target)))
        if option is None:
            raise _bad(
                path,
                f"measure_spec item {item.get('item_id')}: alias {alias!r} names "
                f"{target!r}, which is not one of its response_map texts",
            )
        aliases[option].append(str(alias))
    return [
        {"text": t, "value": v, **({"aliases": aliases[t]} if aliases[t] else {})}
        for t, v in response_map.items()
    ]


def _safety_rules(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec's own rules, or the shipped ones for its code.

    A ``flags`` entry in the threshold form (``code``, ``item``, ``min_value``,
    ``message``) is read as a critical ``>=`` rule; entries already in the
    ``safety_rules`` form are taken as they are.
    """
    declared = data.get("safety_rules") or data.get("flags")
    if not declared:
        return [r.model_dump() for r in SAFETY_RULES.get(str(data.get("measure_id")), [])]
    rules = []
    for entry in declared:
        if isinstance(entry, dict) and "min_value" in entry and "condition" not in entry:
            rules.append(
                {
                    "code": entry.get("code"),
                    "item": entry.get("item"),
                    "condition": {"op": ">=", "value": entry.get("min_value")},
                    "severity": entry.get("severity") or "critical",
                    "message": entry.get("message"),
                }
            )
        else:
            rules.append(entry)
    return rules


def item_positions(data: dict[str, Any]) -> dict[str, int]:
    """``item_id -> position`` of a measure_spec."""
    return {it["item_id"]: it["position"] for it in data.get("items") or [] if "item_id" in it}


def binding_to_binding(
    data: dict[str, Any], path: Path, positions: dict[str, dict[str, int]]
) -> Binding:
    """One ``form_binding_spec`` as a ``Binding``.

    ``by: field_key`` binds a question id, ``by: position`` a 1-based position in
    the form, ``by: text`` the question's wording. ``positions`` maps each known
    measure code to its ``item_id -> position``.
    """
    questions = []
    for section in data.get("sections") or []:
        code = section.get("measure_id")
        spec = positions.get(code)
        if spec is None:
            raise PermanentError(f"binding section names unknown measure {code!r}", file=str(path))
        for b in section.get("bindings") or []:
            key = _BY.get(str(b.get("by")))
            if key is None:
                raise _bad(
                    path,
                    f"binding {data.get('binding_id')}: section {code} binds by "
                    f"{b.get('by')!r}; use field_key, position or text",
                )
            value = b.get("value")
            where = f"binding section {code} item {b.get('item_id')}"
            if value is None or str(value).strip() == "":
                raise _bad(path, f"{where}: no value to bind by")
            if key == "position" and (isinstance(value, bool) or not str(value).isdigit()):
                raise _bad(path, f"{where}: by position needs a whole number")
            item = spec.get(b.get("item_id"))
            if item is None:
                raise PermanentError(
                    f"binding section {code} names unknown item {b.get('item_id')!r}",
                    file=str(path),
                )
            bound = int(str(value)) if key == "position" else str(value)
            questions.append({key: bound, "instrument": code, "item": item})
    spec_data = {
        "binding_id": data.get("binding_id"),
        "version": data.get("version"),
        "form_id": _FORM_PREFIX.sub("", str(data.get("form_id") or "")),
        "title": data.get("title") or data.get("description") or data.get("binding_id"),
        "description": data.get("description") or "",
        "instruments": list(dict.fromkeys(s.get("measure_id") for s in data.get("sections") or [])),
        "questions": questions,
    }
    try:
        return Binding.model_validate(spec_data)
    except (ValidationError, ValueError) as exc:
        raise _invalid(path, "form_binding_spec", exc) from exc


def yaml_positions(inst: Instrument) -> dict[str, int]:
    """``item_id -> position`` for a YAML instrument, in the original's naming."""
    return {f"{inst.code}_item{it.position}": it.position for it in inst.items}


def load_measures(
    root: Path | str,
    skip: set[str] = frozenset(),  # type: ignore[assignment]
) -> tuple[dict[str, Instrument], dict[str, dict[str, int]], list[dict[str, str]]]:
    """Measure specs (newest version per id, ids in ``skip`` left out), their item
    positions, and ``{file, message}`` problems of the files that did not load."""
    instruments: dict[str, Instrument] = {}
    positions: dict[str, dict[str, int]] = {}
    problems: list[dict[str, str]] = []
    for mid, path in latest_files(Path(root), MEASURES_DIR).items():
        if mid in skip:
            continue
        try:
            data = _read(path, "measure_spec")
            instruments[mid] = measure_to_instrument(data, path)
            positions[mid] = item_positions(data)
        except PermanentError as exc:
            problems.append({"file": str(path), "message": exc.message})
    return instruments, positions, problems


def load_form_bindings(
    root: Path | str,
    positions: dict[str, dict[str, int]],
    skip: set[str] = frozenset(),  # type: ignore[assignment]
) -> tuple[dict[str, Binding], list[dict[str, str]]]:
    """Form binding specs (newest version per id) and the problems of those that did not load."""
    out: dict[str, Binding] = {}
    problems: list[dict[str, str]] = []
    for bid, path in latest_files(Path(root), BINDINGS_DIR).items():
        if bid in skip:
            continue
        try:
            out[bid] = binding_to_binding(_read(path, "form_binding_spec"), path, positions)
        except PermanentError as exc:
            problems.append({"file": str(path), "message": exc.message})
    return out, problems
