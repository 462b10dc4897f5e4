"""Load instrument specs and form bindings from a catalog directory.

Specs are YAML under ``<catalog>/instruments/<code>.yaml`` and
``<catalog>/bindings/<binding_id>.yaml``. Loading is cached per directory and
file fingerprint (name, size, mtime), so a long-lived process sees edits but
does not re-parse on every batch.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.instruments.finalform_registry import (
    load_form_bindings,
    load_measures,
    yaml_positions,
)
from lorchestra_dagster.instruments.models import Binding, Instrument

M = TypeVar("M", bound=BaseModel)


def _fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    if not folder.is_dir():
        return ()
    out = []
    for path in sorted(folder.glob("*.yaml")):
        st = path.stat()
        out.append((path.name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _load_one(path: Path, model: type[M]) -> M:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise PermanentError(
            f"invalid YAML: {exc}",
            file=str(path),
            line=mark.line + 1 if mark else None,
            code="E_YAML",
        ) from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PermanentError(
            f"{model.__name__} spec invalid at {where or '<root>'}: {first['msg']}"
            + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""),
            file=str(path),
            code="E_SPEC",
        ) from exc


def _load_folder(folder: str, model: type[Any], key: str) -> dict[str, Any]:
    """Every spec of one folder keyed by its id field, which must equal the file stem."""
    out: dict[str, Any] = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        spec = _load_one(path, model)
        ident = getattr(spec, key)
        if ident != path.stem:
            raise PermanentError(f"{key} {ident!r} must equal the file stem", file=str(path))
        out[ident] = spec
    return out


@lru_cache(maxsize=16)
def _instruments(folder: str, _fp: tuple) -> dict[str, Instrument]:
    return _load_folder(folder, Instrument, "code")


@lru_cache(maxsize=16)
def _bindings(folder: str, _fp: tuple) -> dict[str, Binding]:
    return _load_folder(folder, Binding, "binding_id")


def load_instruments(catalog_dir: Path | str) -> dict[str, Instrument]:
    """Every instrument of the catalog, keyed by code.

    The YAML specs first; measure specs of the original finalform's JSON
    registry fill the codes they do not define (``finalform_registry``).
    """
    folder = Path(catalog_dir) / "instruments"
    out = dict(_instruments(str(folder.resolve()), _fingerprint(folder)))
    imported, _positions, problems = load_measures(catalog_dir, set(out))
    if problems:
        raise PermanentError(problems[0]["message"], file=problems[0]["file"], code="E_SPEC")
    out.update(imported)
    return out


def get_instrument(catalog_dir: Path | str, code: str) -> Instrument:
    """One instrument, or a PermanentError listing the known codes."""
    instruments = load_instruments(catalog_dir)
    try:
        return instruments[code]
    except KeyError:
        known = ", ".join(sorted(instruments)) or "none"
        raise PermanentError(
            f"unknown instrument {code!r} (known: {known})", code="E_UNKNOWN_INSTRUMENT"
        ) from None


def load_bindings(catalog_dir: Path | str) -> dict[str, Binding]:
    """Every binding of the catalog, keyed by binding id, checked against the instruments.

    YAML bindings first, then the original finalform's ``form_binding_spec`` files.
    """
    folder = Path(catalog_dir) / "bindings"
    bindings = dict(_bindings(str(folder.resolve()), _fingerprint(folder)))
    instruments = load_instruments(catalog_dir)
    positions = _positions(catalog_dir, instruments)
    imported, problems = load_form_bindings(catalog_dir, positions, set(bindings))
    if problems:
        raise PermanentError(problems[0]["message"], file=problems[0]["file"], code="E_BINDING")
    bindings.update(imported)
    forms: dict[str, str] = {}
    for binding in bindings.values():
        if binding.form_id in forms:
            raise PermanentError(
                f"form_id {binding.form_id!r} is bound by both {forms[binding.form_id]} and "
                f"{binding.binding_id}",
                file=str(folder / f"{binding.binding_id}.yaml"),
                code="E_BINDING",
            )
        forms[binding.form_id] = binding.binding_id
        for q in binding.questions:
            spec = instruments.get(q.instrument)
            if spec is None or q.item > len(spec.items):
                raise PermanentError(
                    f"binding {binding.binding_id}: question {q.label} points at "
                    f"{q.instrument} item {q.item}, which does not exist",
                    file=str(folder / f"{binding.binding_id}.yaml"),
                    code="E_BINDING",
                )
    return bindings


def _positions(
    catalog_dir: Path | str, instruments: dict[str, Instrument]
) -> dict[str, dict[str, int]]:
    """item_id -> position of every instrument (measure specs' own ids, else the naming)."""
    _imported, positions, _problems = load_measures(catalog_dir)
    return {code: positions.get(code) or yaml_positions(inst) for code, inst in instruments.items()}


def catalog_problems(catalog_dir: Path | str) -> list[dict[str, str]]:
    """Every invalid instrument or binding file in one pass, for ``lorchestra validate``.

    Returns ``[{"file", "message"}]`` (empty when clean); nothing is cached.
    """
    problems: list[dict[str, str]] = []
    instruments: dict[str, Instrument] = {}
    for path in sorted((Path(catalog_dir) / "instruments").glob("*.yaml")):
        try:
            spec = _load_one(path, Instrument)
        except PermanentError as exc:
            problems.append({"file": str(path), "message": exc.message})
            continue
        if spec.code != path.stem:
            problems.append({"file": str(path), "message": "code must equal the file stem"})
        instruments[spec.code] = spec
    imported, positions, json_problems = load_measures(catalog_dir, set(instruments))
    problems.extend(json_problems)
    instruments.update(imported)
    all_positions = {
        code: positions.get(code) or yaml_positions(inst) for code, inst in instruments.items()
    }
    yaml_bindings = {p.stem for p in (Path(catalog_dir) / "bindings").glob("*.yaml")}
    _json_bindings, binding_problems = load_form_bindings(catalog_dir, all_positions, yaml_bindings)
    problems.extend(binding_problems)
    forms: dict[str, str] = {}
    for path in sorted((Path(catalog_dir) / "bindings").glob("*.yaml")):
        try:
            binding = _load_one(path, Binding)
        except PermanentError as exc:
            problems.append({"file": str(path), "message": exc.message})
            continue
        if binding.binding_id != path.stem:
            problems.append({"file": str(path), "message": "binding_id must equal the file stem"})
        if binding.form_id in forms:
            problems.append(
                {
                    "file": str(path),
                    "message": f"form_id {binding.form_id!r} is bound twice "
                    f"(also by {forms[binding.form_id]})",
                }
            )
        forms[binding.form_id] = binding.binding_id
        for q in binding.questions:
            bound = instruments.get(q.instrument)
            if bound is None or q.item > len(bound.items):
                problems.append(
                    {
                        "file": str(path),
                        "message": f"question {q.label}: {q.instrument} item {q.item} "
                        "does not exist",
                    }
                )
    return problems
