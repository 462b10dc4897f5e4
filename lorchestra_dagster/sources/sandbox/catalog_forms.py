"""Read form bindings and instruments from a catalog into sandbox form specs.

Binding (``bindings/<form_id>.yaml``): ``form_id``, ``title``, ``questions:
[{question_id, instrument, item}]``. Instrument (``instruments/<code>.yaml``):
``response_sets: {name: [{text, value}]}``, ``items: [{position,
response_set, text}]``, ``scales: [{reversed: [positions]}]``, ``safety_rules:
[{item, condition}]``. Options are served in response-set order; reversed items answer
against the client's level, and flagged items (PHQ-9 item 9) follow the
client's risk flag.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from lorchestra_dagster.sources.sandbox.forms import FORM_IDS, FormSpec, Question, fallback_spec


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _instrument_questions(inst: dict[str, Any]) -> dict[int, dict[str, Any]]:
    reversed_items = {
        int(p) for scale in inst.get("scales") or [] for p in scale.get("reversed") or []
    }
    flagged = {
        int(r["item"])
        for r in inst.get("safety_rules") or []
        if "item" in r and (r.get("condition") or {}).get("op") != "unanswered"
    }
    sets = inst.get("response_sets") or {}
    out = {}
    for item in inst.get("items") or []:
        pos = int(item["position"])
        options = tuple(str(o["text"]) for o in sets.get(item["response_set"], []))
        out[pos] = {
            "title": str(item["text"]),
            "options": options,
            "reversed": pos in reversed_items,
            "risk": pos in flagged,
        }
    return out


def specs_from_catalog(catalog_dir: Path, form_ids: Iterable[str]) -> dict[str, FormSpec]:
    """Form specs for ``form_ids`` found in ``catalog_dir/bindings``; missing ones are left out."""
    specs: dict[str, FormSpec] = {}
    instruments: dict[str, dict[int, dict[str, Any]]] = {}
    for form_id in form_ids:
        path = catalog_dir / "bindings" / f"{form_id}.yaml"
        if not path.is_file():
            continue
        binding = _load(path)
        spec = FormSpec(
            form_id=str(binding.get("form_id", form_id)), title=str(binding.get("title", form_id))
        )
        for q in binding.get("questions") or []:
            if not q.get("question_id"):
                raise ValueError(
                    f"{path}: the sandbox serves Google Forms, whose questions have ids; "
                    "a binding by position or text cannot be served"
                )
            code = str(q["instrument"])
            if code not in instruments:
                instruments[code] = _instrument_questions(
                    _load(catalog_dir / "instruments" / f"{code}.yaml")
                )
            item = instruments[code][int(q["item"])]
            spec.questions.append(
                Question(
                    question_id=str(q["question_id"]),
                    item_id=f"{code}_{q['item']}",
                    measure=code,
                    title=item["title"],
                    options=item["options"],
                    risk_item=item["risk"],
                    reversed=item["reversed"],
                )
            )
        specs[form_id] = spec
    return specs


def default_catalog() -> Path | None:
    """The catalog shipped with the project (``<repo>/jobs``) when it has bindings."""
    path = Path(__file__).resolve().parents[3] / "jobs"
    return path if (path / "bindings").is_dir() else None


def load_form_specs(catalog_dir: Path | None) -> dict[str, FormSpec]:
    """Form specs for the three practice forms, from the catalog when it has bindings.

    ``catalog_dir=None`` means the shipped catalog, so the sandbox and the
    shipped scoring agree without any configuration.
    """
    specs = {fid: fallback_spec(fid) for fid in FORM_IDS}
    catalog_dir = catalog_dir or default_catalog()
    if catalog_dir is None:
        return specs
    specs.update(specs_from_catalog(Path(catalog_dir), FORM_IDS))
    return specs
