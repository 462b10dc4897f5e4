"""The ``finalform`` callable: canonical form responses -> measurement events + observations.

Each submission becomes one ``derived.measurement_events`` row (its idem_key is
the canonical idem_key, so reruns are idempotent and incremental reads line up)
and one ``derived.observations`` row per scale scored (idem_key
``<event idem_key>:<measure_code>``). The event is returned as ``items`` and the
observations under the extra key ``observations``; the formation job writes the
observations first and the events last, so an event row marks a fully
processed submission.

Safety first: every instrument's safety rules run on each submission item by
item, before and apart from scoring (:mod:`lorchestra_dagster.instruments.safety`),
and come back as ``safety_flags`` rows (``derived.safety_flags``, one per
submission and rule code) that the job writes before anything else. A
submission that cannot be scored (an answer no option matches, a payload
without answers) is *quarantined*: it gets a ``submission_quarantined`` flag
row carrying its key and a reason made of codes and item positions (never an
answer), no event and no observations, and every other submission of the
batch is scored. Having no event, it is read again by the next run, so a fix
of the data or of the spec scores it and turns its quarantine flag inactive.

Flag rows are never deleted. ``previous_flags`` (the active rows on record)
lets a re-scored submission whose answer changed mark a flag it no longer
raises ``active: false``; the alert it opened stays (docs/clinical-safety.md).

A submission whose form has no binding still yields an event (status
``unbound``, no observations), otherwise the incremental read would return it
on every run. Subjects are identified by ``sha256(lower(trim(email)))``: no raw
email ever appears in a key.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from lorchestra_dagster.callables.base import CallContext, register, result
from lorchestra_dagster.errors import LorchestraError, PermanentError
from lorchestra_dagster.instruments.models import (
    Binding,
    Instrument,
    QuestionBinding,
    normalise_text,
)
from lorchestra_dagster.instruments.registry import load_bindings, load_instruments
from lorchestra_dagster.instruments.safety import SafetyHit, evaluate_rules, item_value
from lorchestra_dagster.instruments.scorer import InstrumentScore, bands_origin, score

#: The flag code of a submission that could not be scored.
QUARANTINED = "submission_quarantined"


class _RecordError(Exception):
    """A submission that cannot be scored; ``reason`` holds codes and positions only."""

    def __init__(self, reason: str, instrument: str | None = None, item: int | None = None):
        super().__init__(reason)
        self.reason, self.instrument, self.item = reason, instrument, item


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
    event: dict[str, Any], spec: Instrument, scored: InstrumentScore, hits: list[SafetyHit]
) -> list[dict[str, Any]]:
    items = [
        {"item": a.item, "answer": a.answer, "value": a.value}
        for a in sorted(scored.answers.values(), key=lambda a: a.item)
    ]
    flags = [h.to_dict() for h in hits]
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


def _flag_row(
    event: dict[str, Any],
    code: str,
    *,
    severity: str,
    message: str,
    reason: str,
    instrument: str | None,
    item: int | None,
    value: int | None = None,
) -> dict[str, Any]:
    return {
        "flag_id": f"{event['idem_key']}:{code}",
        "measurement_event_idem_key": event["idem_key"],
        "subject_id": event["subject_id"],
        "form_id": event["form_id"],
        "instrument_code": instrument,
        "item": item,
        "code": code,
        "severity": severity,
        "message": message,
        "reason": reason,
        "item_value": value,
        "active": True,
        "occurred_at": event["occurred_at"],
        "correlation_id": event["correlation_id"],
    }


def _quarantine_row(event: dict[str, Any], err: _RecordError) -> dict[str, Any]:
    return _flag_row(
        event,
        QUARANTINED,
        severity="warning",
        message=(
            "Submission not scored: an answer matches no option of its item, or the "
            "record is malformed. Fix the form binding or the instrument spec (or the "
            "response); the next run scores it."
        ),
        reason=err.reason,
        instrument=err.instrument,
        item=err.item,
    )


def _event_head(row: dict[str, Any], payload: dict[str, Any] | None) -> dict[str, Any]:
    payload = payload or {}
    return {
        "idem_key": row.get("idem_key"),
        "canonical_idem_key": row.get("idem_key"),
        "form_id": payload.get("form_id"),
        "subject_id": subject_id(payload.get("respondent_email")),
        "occurred_at": payload.get("submitted_at"),
        "correlation_id": row.get("correlation_id"),
    }


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _check_answers(
    per_instrument: dict[str, dict[int, Any]], instruments: dict[str, Instrument]
) -> None:
    """Raise ``_RecordError`` naming every unreadable answer by instrument, item and code."""
    problems: list[tuple[str, int, str]] = []
    for code, answers in per_instrument.items():
        spec = instruments[code]
        for pos, answer in sorted(answers.items()):
            if answer is None:
                continue
            if pos > len(spec.items):
                problems.append((code, pos, "E_ITEM"))
                continue
            _value, how = item_value(spec, pos, answer)
            if how == "unreadable":
                kind = "E_ANSWER_TEXT" if isinstance(answer, str) else "E_ANSWER_RANGE"
                problems.append((code, pos, kind))
    if problems:
        reason = "; ".join(f"{c} item {i}: {k}" for c, i, k in problems)
        raise _RecordError(reason, problems[0][0], problems[0][1])


def _bound_question(
    answer: dict[str, Any], bound: dict[tuple[str, str], QuestionBinding]
) -> QuestionBinding | None:
    """The binding an answer falls under: by question id, else position, else wording."""
    keys = [("question_id", str(answer.get("question_id")))]
    position = answer.get("position")
    if isinstance(position, int) and not isinstance(position, bool):
        keys.append(("position", str(position)))
    text = answer.get("question_text")
    if isinstance(text, str) and text.strip():
        keys.append(("question_text", normalise_text(text)))
    return next((bound[k] for k in keys if k in bound), None)


def _form(
    row: dict[str, Any],
    payload: dict[str, Any],
    binding: Binding | None,
    instruments: dict[str, Instrument],
    flags: list[dict[str, Any]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The event and observations of one submission; its safety rows go to ``flags`` first.

    Raises ``_RecordError`` after the safety rows are in ``flags``: a submission
    that cannot be scored still raises every flag its readable answers call for.
    """
    event = _event_head(row, payload)
    event["binding_id"] = binding.binding_id if binding else None
    event["binding_version"] = binding.version if binding else None
    if binding is None:
        event["metadata"] = {
            "status": "unbound",
            "response_id": payload.get("response_id"),
            "instruments": [],
            "answers": [],
            "unmapped_questions": len(payload["answers"]),
        }
        return event, []
    bound = {q.key: q for q in binding.questions}
    per_instrument: dict[str, dict[int, Any]] = {code: {} for code in binding.instruments}
    answers_meta: list[dict[str, Any]] = []
    unmapped = 0
    for answer in sorted(payload["answers"], key=lambda a: str(a.get("question_id"))):
        q = _bound_question(answer, bound)
        if q is None:
            unmapped += 1
            continue
        if q.item in per_instrument[q.instrument]:
            # Two answers on one item (a repeated position or wording): no guess at which counts.
            raise _RecordError(f"{q.instrument} item {q.item}: E_BOUND_TWICE", q.instrument, q.item)
        value = answer.get("answer_value")
        per_instrument[q.instrument][q.item] = value
        answers_meta.append(
            {
                "question_id": answer.get("question_id"),
                "instrument": q.instrument,
                "item": q.item,
                "answer_value": value,
            }
        )
    # A blank answer is a skipped one (for the rules and for the missing-item rule).
    taken = {
        code: {k: v for k, v in per_instrument[code].items() if not _blank(v)}
        for code in binding.instruments
    }
    taken = {code: answers for code, answers in taken.items() if answers}
    hits = {code: evaluate_rules(instruments[code], answers) for code, answers in taken.items()}
    for code, found in hits.items():
        for h in found:
            flags.append(
                _flag_row(event, h.code, severity=h.severity, message=h.message,
                          reason=h.reason, instrument=code, item=h.item, value=h.value)
            )  # fmt: skip
    _check_answers(taken, instruments)
    observations: list[dict[str, Any]] = []
    values: dict[tuple[str, int], int] = {}
    for code, answers in taken.items():
        spec = instruments[code]
        try:
            scored = score(spec, answers)
        except LorchestraError as exc:
            raise _RecordError(f"{code}: {exc.code or 'E_SCORE'}", code) from None
        for a in scored.answers.values():
            values[(code, a.item)] = a.value
        observations.extend(_observations(event, spec, scored, hits[code]))
    for meta in answers_meta:
        meta["value"] = values.get((meta["instrument"], meta["item"]))
    event["metadata"] = {
        "status": "scored",
        "response_id": payload.get("response_id"),
        "instruments": list(taken),
        "answers": answers_meta,
        "unmapped_questions": unmapped,
    }
    return event, observations


def _previous(params: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Active flag rows on record by submission key (``previous_flags``)."""
    rows = params.get("previous_flags") or []
    if not isinstance(rows, list):
        raise PermanentError("finalform: previous_flags must be a list of flag rows")
    out: dict[str, list[dict[str, Any]]] = {}
    for n, r in enumerate(rows):
        if not isinstance(r, dict) or not r.get("flag_id") or not r.get("code"):
            raise PermanentError(f"finalform: previous_flags item {n} needs flag_id and code")
        if r.get("active") is False:
            continue
        key = str(r.get("measurement_event_idem_key") or r["flag_id"].rsplit(":", 1)[0])
        out.setdefault(key, []).append(r)
    return out


@register("finalform")
def run(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """Raise safety flags and score canonical form responses.

    Params:
        items: canonical rows (``idem_key``, ``payload`` form_response, ``correlation_id``).
        previous_flags: the active ``derived.safety_flags`` rows on record; a flag
            of a submission of ``items`` that is no longer raised comes back
            with ``active: false`` (never deleted).
        config.binding_id: force one binding (default: the binding whose
            ``form_id`` equals ``payload.form_id``).

    Returns:
        ``items``: measurement event rows; ``observations``: observation rows;
        ``safety_flags``: flag rows (rules fired, quarantines, flags cleared).
        No submission fails the step: one that cannot be scored is quarantined
        and counted in ``stats.quarantined``.
    """
    config = params.get("config") or {}
    unknown = set(config) - {"binding_id"}
    if unknown:
        raise PermanentError(f"finalform: unknown config keys {sorted(unknown)}")
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
    previous = _previous(params)
    items = params.get("items") or []
    events: list[dict[str, Any]] = []
    observations: list[dict[str, Any]] = []
    flags: list[dict[str, Any]] = []
    quarantined = unbound = 0
    for row in items:
        raised_before = len(flags)
        payload: dict[str, Any] | None = None
        binding: Binding | None = None
        try:
            payload = _payload(row)
            form_id = payload["form_id"]
            binding = forced or by_form.get(form_id)
            if forced is not None and forced.form_id != form_id:  # a job error, not data
                raise PermanentError(f"form {form_id!r} is not bound by {forced.binding_id!r}")
            event, obs = _form(row, payload, binding, instruments, flags)
        except _RecordError as exc:
            quarantined += 1
            flags.append(_quarantine_row(_event_head(row, payload), exc))
        else:
            unbound += binding is None
            events.append(event)
            observations.extend(obs)
        raised = {f["flag_id"] for f in flags[raised_before:]}
        for old in previous.get(str(row.get("idem_key")), []):
            if old["flag_id"] not in raised:
                flags.append({**old, "active": False, "processed_at": None})
    for f in flags:
        f.pop("processed_at", None)  # stamped by plan.build
    out = result(
        events, input=len(items), skipped=unbound, observations=observations, safety_flags=flags
    )
    out["stats"]["quarantined"] = quarantined
    return out
