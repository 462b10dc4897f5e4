"""What the vault says about a score besides its number: band source and proration marks.

A clinician reading ``measures.md`` must be able to tell a published cut-off
(PHQ-9's 10 = moderate) from this practice's own convention (IPIP low/average/high),
and a complete score from one prorated over an unanswered item, above all when
the unanswered item decides the band. The band sources come from the instrument
catalog (the one source of truth for bands, as for the chart); the proration marks
come from the observation (``prorated``, ``crosses_cutoff`` and ``gate``, exposed
by the ``proj_measurements`` view from the observation's components).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Words the vault uses for the marks (the tests and docs/vault.md quote them).
PRORATED = "prorated"
BAND_UNCERTAIN = "band uncertain"
LOCAL_BANDS = "local bands"


@dataclass(frozen=True)
class ScaleNote:
    """Where one scale's bands come from, and whether its form is a local adaptation."""

    instrument: str
    instrument_name: str
    origin: str
    bands: str | None
    reference: str
    #: Printed beside a score whose screen ended at the instrument's gate question.
    gate_note: str = ""


def scale_notes(catalog_dir: Path | None) -> dict[str, ScaleNote]:
    """``measure_code -> ScaleNote`` for every scale of the catalog (empty without one)."""
    if catalog_dir is None or not (Path(catalog_dir) / "instruments").is_dir():
        return {}
    from lorchestra_dagster.instruments import load_instruments
    from lorchestra_dagster.instruments.scorer import bands_origin

    out = {}
    for spec in load_instruments(catalog_dir).values():
        for scale in spec.scales:
            src = scale.bands_source
            ref = (src.citation or src.note) if src else ""
            out[scale.code] = ScaleNote(
                spec.code,
                spec.name,
                spec.origin,
                bands_origin(scale),
                " ".join(ref.split()),
                spec.gate.ended_note if spec.gate else "",
            )
    return out


def is_true(value: Any) -> bool:
    """A mark read back from the warehouse: a boolean, or its JSON/text spelling."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True or value == 1


def score_marks(row: dict[str, Any]) -> list[str]:
    """``prorated`` and ``band uncertain`` as they apply to one observation row."""
    marks = []
    if is_true(row.get("prorated")):
        marks.append(PRORATED)
        if is_true(row.get("crosses_cutoff")):
            marks.append(BAND_UNCERTAIN)
    return marks


def severity_cell(row: dict[str, Any], notes: dict[str, ScaleNote]) -> str:
    """The severity with ``(local bands, band uncertain)`` as they apply; empty when unbanded."""
    sev = row.get("severity_label") or row.get("severity_code")
    if not sev:
        return ""
    note = notes.get(str(row.get("measure_code")))
    extra = [LOCAL_BANDS] if note is not None and note.bands == "local" else []
    extra += [m for m in score_marks(row) if m == BAND_UNCERTAIN]
    if note is not None and note.gate_note and row.get("gate") == "ended":
        extra.append(note.gate_note)
    return f"{sev} ({', '.join(extra)})" if extra else str(sev)


def about_section(rows: list[dict[str, Any]], notes: dict[str, ScaleNote]) -> str:
    """``## About these scores``: the source of each instrument's bands and what marks mean."""
    by_instrument: dict[str, set[tuple[str | None, str]]] = defaultdict(set)
    names: dict[str, str] = {}
    local_forms = set()
    for r in rows:
        note = notes.get(str(r.get("measure_code")))
        if note is None:
            continue
        names[note.instrument] = note.instrument_name
        by_instrument[note.instrument].add((note.bands, note.reference))
        if note.origin == "local":
            local_forms.add(note.instrument)
    lines = ["\n## About these scores\n\n"]
    for code in sorted(by_instrument):
        parts = ["a local adaptation, not a published form"] if code in local_forms else []
        for bands, ref in sorted(by_instrument[code], key=lambda x: (str(x[0]), x[1])):
            if bands is None:
                parts.append("no bands (no cut-offs applied)")
            else:
                label = "published bands" if bands == "published" else LOCAL_BANDS
                parts.append(f"{label}: {ref.rstrip('.')}" if ref else label)
        lines.append(f"- `{code}` {names[code]} — {'; '.join(parts)}.\n")
    lines.append(
        f"- _{PRORATED}_: an item was left unanswered and the score was prorated from the "
        "answered items, as the instrument's missing-item rule allows.\n"
        f"- _{BAND_UNCERTAIN}_: a prorated score whose band depends on the unanswered item "
        "(answered at its lowest or highest, the complete score would fall in different "
        "bands); read the band as provisional.\n"
        f"- _{LOCAL_BANDS}_: cut-offs that are this practice's convention, not published ones.\n"
    )
    return "".join(lines)
