"""The ``finalform`` callable: canonical form responses -> measurement events + observations.

Each submission becomes one ``derived.measurement_events`` row (its idem_key is
the canonical idem_key, so reruns are idempotent and incremental reads line up)
and one ``derived.observations`` row per scale scored (idem_key
``<event idem_key>:<measure_code>``). The event is returned as ``items`` and the
observations under the extra key ``observations``; the formation job writes the
observations first and the events last, so an event row marks a fully
processed submission.

A submission whose form has no binding still yields an event (status
``unbound``, no observations), otherwise the incremental read would return it
on every run. Subjects are identified by ``sha256(lower(trim(email)))``: no raw
email ever appears in a key.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from lorchestra_dagster.callables.base import CallContext, enforce_error_budget, register, result
from lorchestra_dagster.errors import LorchestraError, PermanentError
from lorchestra_dagster.instruments.models import Binding, Instrument
from lorchestra_dagster.instruments.registry import load_bindings, load_instruments
from lorchestra_dagster.instruments.scorer import InstrumentScore, bands_origin, score

SAMPLE_SIZE = 5


class _RecordError(Exception):
    pass


def subject_id(email: Any) -> str | None:
    """Stable pseudonymous subject id: sha256 hex of the trimmed, lower-cased email."""
    if not isinstance(email, str) or not email.strip():
        return None
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def _payload(row: dict[str, Any]) -> dict[str, Any]:
    payload = row.get("payload")
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError:
            raise _RecordError("payload is not valid JSON") from None
    if not isinstance(payload, dict):
        raise _RecordError("payload is not an object")
    for key in ("form_id", "submitted_at", "answers"):
        if key not in payload:
            raise _RecordError(f"payload has no {key!r} (not a canonical form_response?)")
    return payload


def _observations(
    event: dict[str, Any], spec: Instrument, scored: InstrumentScore
) -> list[dict[str, Any]]:
    items = [
        {"item": a.item, "answer": a.answer, "value": a.value}
        for a in sorted(scored.answers.values(), key=lambda a: a.item)
    ]
    flags = [f.to_dict() for f in scored.flags]
    out = []
    for index, (scale, s) in enumerate(zip(spec.scales, scored.scales, strict=True)):
        out.append(
            {
                "idem_key": f"{event['idem_key']}:{s.code}",
                "measurement_event_idem_key": event["idem_key"],
                "subject_id": event["subject_id"],
                "measure_code": s.code,
                "instrument_code": spec.code,
                "value_numeric": s.value,
                "severity_code": s.severity_code,
                "severity_label": s.severity_label,
                "components": {
                    "instrument_version": spec.version,
                    "binding_id": event["binding_id"],
                    "method": scale.method,
                    "missing": s.missing,
                    "prorated": s.prorated,
                    "crosses_cutoff": s.crosses_cutoff,
                    "bands_source": bands_origin(scale),
                    **({"gate": scored.gate} if scored.gate else {}),
                    "raw_sum": s.raw_sum,
                    "scale_items": list(scale.items),
                    "reversed_items": list(scale.reversed),
                    "items": [
                        {**i, "scored_value": s.scored_values.get(i["item"])}
                        for i in items
                        if i["item"] in scale.items
                    ],
                    "unscored_items": [i for i in items if not spec.item(i["item"]).scored],
                },
                # Item-level safety flags live on the instrument's primary (first) scale.
                "flags": flags if index == 0 else [],
                "occurred_at": event["occurred_at"],
                "correlation_id": event["correlation_id"],
            }
        )
    return out


def _form(
    row: dict[str, Any],
    binding: Binding | None,
    instruments: dict[str, Instrument],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    payload = _payload(row)
    event: dict[str, Any] = {
        "idem_key": row.get("idem_key"),
        "canonical_idem_key": row.get("idem_key"),
        "binding_id": binding.binding_id if binding else None,
        "binding_version": binding.version if binding else None,
        "form_id": payload["form_id"],
        "subject_id": subject_id(payload.get("respondent_email")),
        "occurred_at": payload["submitted_at"],
        "correlation_id": row.get("correlation_id"),
    }
    if binding is None:
        event["metadata"] = {
            "status": "unbound",
            "response_id": payload.get("response_id"),
            "instruments": [],
            "answers": [],
            "unmapped_questions": len(payload["answers"]),
        }
        return event, []
    by_qid = {q.question_id: q for q in binding.questions}
    per_instrument: dict[str, dict[int, Any]] = {code: {} for code in binding.instruments}
    answers_meta = []
    unmapped = 0
    for answer in sorted(payload["answers"], key=lambda a: str(a.get("question_id"))):
        q = by_qid.get(answer.get("question_id"))
        if q is None:
            unmapped += 1
            continue
        value = answer.get("answer_value")
        per_instrument[q.instrument][q.item] = value
        answers_meta.append(
            {
                "question_id": q.question_id,
                "instrument": q.instrument,
                "item": q.item,
                "answer_value": value,
            }
        )
    observations: list[dict[str, Any]] = []
    scored_codes = []
    values: dict[tuple[str, int], int] = {}
    for code in binding.instruments:
        answers = {k: v for k, v in per_instrument[code].items() if v is not None}
        if not answers:
            continue
        spec = instruments[code]
        try:
            scored = score(spec, answers)
        except LorchestraError as exc:
            raise _RecordError(exc.message) from None
        for a in scored.answers.values():
            values[(code, a.item)] = a.value
        scored_codes.append(code)
        observations.extend(_observations(event, spec, scored))
    for a in answers_meta:
        a["value"] = values.get((a["instrument"], a["item"]))
    event["metadata"] = {
        "status": "scored",
        "response_id": payload.get("response_id"),
        "instruments": scored_codes,
        "answers": answers_meta,
        "unmapped_questions": unmapped,
    }
    return event, observations


@register("finalform")
def run(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """Score canonical form responses.

    Params:
        items: canonical rows (``idem_key``, ``payload`` form_response, ``correlation_id``).
        config.binding_id: force one binding (default: the binding whose
            ``form_id`` equals ``payload.form_id``).
        config.error_budget: failed submissions tolerated (default 0).

    Returns:
        ``items``: measurement event rows; ``observations``: observation rows.
    """
    config = params.get("config") or {}
    budget = config.get("error_budget", 0)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
        raise PermanentError("finalform: config.error_budget must be an integer >= 0")
    bindings = load_bindings(ctx.catalog_dir)
    instruments = load_instruments(ctx.catalog_dir)
    forced: Binding | None = None
    if config.get("binding_id"):
        forced = bindings.get(config["binding_id"])
        if forced is None:
            known = ", ".join(sorted(bindings)) or "none"
            raise PermanentError(
                f"finalform: unknown binding {config['binding_id']!r} (known: {known})"
            )
    by_form = {b.form_id: b for b in bindings.values()}
    items = params.get("items") or []
    events: list[dict[str, Any]] = []
    observations: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    errors = unbound = 0
    for row in items:
        try:
            form_id = _payload(row)["form_id"]
            binding = forced or by_form.get(form_id)
            if forced is not None and forced.form_id != form_id:
                raise _RecordError(f"form {form_id!r} is not bound by {forced.binding_id!r}")
            event, obs = _form(row, binding, instruments)
        except _RecordError as exc:
            errors += 1
            if len(failures) < SAMPLE_SIZE:
                failures.append({"idem_key": row.get("idem_key"), "error": str(exc)})
            continue
        unbound += binding is None
        events.append(event)
        observations.extend(obs)
    enforce_error_budget(
        "finalform", errors, len(items), budget, failures, "E_FORMATION", unit="submissions"
    )
    return result(
        events,
        input=len(items),
        skipped=unbound,
        errors=errors,
        observations=observations,
        failures=failures,
    )
