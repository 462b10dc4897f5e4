"""Turn the original finalform's JSON registries into this project's YAML specs.

``lorchestra instruments import DIR`` reads ``DIR/measure-registry/measures/``
and ``DIR/form-binding-registry/bindings/`` (the newest version of each id),
converts each file with the same functions the catalog uses to load them
(:mod:`.finalform_registry`), and writes ``<catalog>/instruments/<code>.yaml``
and ``<catalog>/bindings/<binding_id>.yaml``. Every written text is parsed
back through ``Instrument`` / ``Binding`` before anything is written, so a
file that would not load is never written; an existing file is only replaced
with ``force``.

Planning and writing are apart: :func:`plan_import` does no writes, so the CLI
can refuse the whole import (every problem listed) before touching the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.instruments.finalform_registry import (
    BINDINGS_DIR,
    MEASURES_DIR,
    _read,
    binding_to_binding,
    item_positions,
    latest_files,
    measure_to_instrument,
    yaml_positions,
)
from lorchestra_dagster.instruments.models import Binding, Instrument


@dataclass(frozen=True)
class PlannedFile:
    """One spec to write: what it is, where it goes, its YAML text, whether it replaces one."""

    kind: str  # "instrument" | "binding"
    ident: str
    version: str
    source: Path
    target: Path
    text: str
    exists: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.ident,
            "version": self.version,
            "source": str(self.source),
            "target": str(self.target),
            "replaced": self.exists,
        }


def _plain(value: Any) -> Any:
    """Decimals as ints or floats, so the YAML reads as numbers a clinician can check."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _yaml(model: Instrument | Binding, header: str) -> str:
    data = _plain(model.model_dump(mode="python", exclude_defaults=True))
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return f"# {header}\n{body}"


def plan_import(source: Path, catalog_dir: Path) -> tuple[list[PlannedFile], list[dict[str, str]]]:
    """What importing ``source`` into ``catalog_dir`` would write, and every problem found.

    Bindings may name measures of ``source`` or instruments the catalog already has.
    """
    from lorchestra_dagster.instruments.registry import load_bindings, load_instruments

    source, catalog_dir = Path(source), Path(catalog_dir)
    measures = latest_files(source, MEASURES_DIR)
    bindings = latest_files(source, BINDINGS_DIR)
    problems: list[dict[str, str]] = []
    if not measures and not bindings:
        problems.append(
            {
                "file": str(source),
                "message": f"no {MEASURES_DIR}/<id>/<version>.json or "
                f"{BINDINGS_DIR}/<id>/<version>.json under it",
            }
        )
        return [], problems
    planned: list[PlannedFile] = []
    positions: dict[str, dict[str, int]] = {}
    try:
        for code, inst in load_instruments(catalog_dir).items():
            positions[code] = yaml_positions(inst)
    except PermanentError as exc:
        problems.append({"file": exc.file or str(catalog_dir), "message": exc.message})
    for mid, path in measures.items():
        try:
            data = _read(path, "measure_spec")
            inst = measure_to_instrument(data, path)
            text = _yaml(inst, f"Imported from the original finalform's {mid}/{path.name}.")
            Instrument.model_validate(yaml.safe_load(text))  # what is written loads
        except PermanentError as exc:
            problems.append({"file": str(path), "message": exc.message})
            continue
        positions[inst.code] = item_positions(data)
        target = catalog_dir / "instruments" / f"{inst.code}.yaml"
        planned.append(
            PlannedFile("instrument", inst.code, inst.version, path, target, text, target.exists())
        )
    forms: dict[str, str] = {}
    try:
        forms = {b.form_id: b.binding_id for b in load_bindings(catalog_dir).values()}
    except PermanentError as exc:
        problems.append({"file": exc.file or str(catalog_dir), "message": exc.message})
    for bid, path in bindings.items():
        try:
            binding = binding_to_binding(_read(path, "form_binding_spec"), path, positions)
            other = forms.setdefault(binding.form_id, binding.binding_id)
            if other != binding.binding_id:
                raise PermanentError(
                    f"form_id {binding.form_id!r} is already bound by {other!r}", file=str(path)
                )
            text = _yaml(binding, f"Imported from the original finalform's {bid}/{path.name}.")
            Binding.model_validate(yaml.safe_load(text))
        except PermanentError as exc:
            problems.append({"file": str(path), "message": exc.message})
            continue
        target = catalog_dir / "bindings" / f"{binding.binding_id}.yaml"
        planned.append(
            PlannedFile(
                "binding", binding.binding_id, binding.version, path, target, text, target.exists()
            )
        )
    return planned, problems


def write_import(planned: list[PlannedFile]) -> None:
    """Write every planned file (folders created as needed)."""
    for item in planned:
        item.target.parent.mkdir(parents=True, exist_ok=True)
        item.target.write_text(item.text, encoding="utf-8")
