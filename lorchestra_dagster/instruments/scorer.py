"""Score an instrument from answers: pure, deterministic, exact.

Arithmetic is done in ``Decimal`` so a prorated score is rounded exactly as
the spec declares (``half_up`` rounds 13.5 to 14; Python's ``round`` would
give 14 but 12.5 to 12). Answers are keyed by 1-based item position; a value
is either the item's numeric score or its response text (case-insensitive),
or one of that option's aliases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.instruments.models import Band, Instrument, Scale, normalise_text

_ROUNDING = {
    "half_up": ROUND_HALF_UP,
    "half_even": ROUND_HALF_EVEN,
    "floor": ROUND_FLOOR,
    "ceil": ROUND_CEILING,
}


@dataclass(frozen=True)
class ItemAnswer:
    """One answered item: what was given, its score, and its score after reversal."""

    item: int
    answer: Any
    value: int


@dataclass(frozen=True)
class ScaleScore:
    """The result of one scale."""

    code: str
    value: int | float | None
    severity_code: str | None
    severity_label: str | None
    missing: int
    prorated: bool
    raw_sum: int
    scored_values: dict[int, int]
    #: A prorated score whose band depends on the unanswered items: the complete score could
    #: land on either side of a cut-off. Always False for complete or unbanded scores.
    crosses_cutoff: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "value": self.value,
            "severity_code": self.severity_code,
            "severity_label": self.severity_label,
            "missing": self.missing,
            "prorated": self.prorated,
            "crosses_cutoff": self.crosses_cutoff,
        }


@dataclass(frozen=True)
class InstrumentScore:
    """Every scale of one instrument for one set of answers.

    Safety rules are not here on purpose: they run on their own, item by item
    (:mod:`.safety`), so an answer that breaks scoring cannot hide a risk answer.
    """

    instrument: str
    version: str
    answers: dict[int, ItemAnswer]
    scales: list[ScaleScore]
    #: ``passed``, ``ended`` (the screen stopped at its gate) or ``unanswered``; ``None``
    #: for an instrument without a gate.
    gate: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The shape ``lorchestra instruments score`` prints (flags: :mod:`.safety`)."""
        return {
            "instrument": self.instrument,
            **({"gate": self.gate} if self.gate else {}),
            "scales": [s.to_dict() for s in self.scales],
        }


def resolve_answer(instrument: Instrument, position: int, answer: Any) -> int:
    """The numeric score of ``answer`` for item ``position``.

    Raises:
        PermanentError: unknown item, a number that is not one of the item's
            option values, or a text that is not one of its option texts.
    """
    if position < 1 or position > len(instrument.items):
        raise PermanentError(
            f"{instrument.code}: no item {position} (items are 1..{len(instrument.items)})",
            code="E_ITEM",
        )
    options = instrument.options(position)
    values = sorted(o.value for o in options)
    if isinstance(answer, bool):
        raise PermanentError(f"{instrument.code} item {position}: a boolean is not an answer")
    if isinstance(answer, int | float):
        if float(answer).is_integer() and int(answer) in values:
            return int(answer)
        raise PermanentError(
            f"{instrument.code} item {position}: value {answer} out of range "
            f"(allowed: {', '.join(str(v) for v in values)})",
            code="E_ANSWER_RANGE",
        )
    if isinstance(answer, str):
        wanted = normalise_text(answer)
        for option in options:
            if wanted in option.texts():  # its text or one of its aliases
                return option.value
        try:
            number = float(wanted)
        except ValueError:
            texts = "; ".join(o.text for o in options)
            raise PermanentError(
                f"{instrument.code} item {position}: unknown response text (allowed: {texts})",
                code="E_ANSWER_TEXT",
            ) from None
        return resolve_answer(instrument, position, number)
    raise PermanentError(
        f"{instrument.code} item {position}: unsupported answer type {type(answer).__name__}",
        code="E_ANSWER_TYPE",
    )


def band_for(scale: Scale, value: Decimal) -> Band | None:
    """The one band containing ``value`` (bands tile [min, max], checked on load)."""
    for band in scale.bands:
        if band.min <= value <= band.max:
            return band
    return None


def bands_origin(scale: Scale) -> str | None:
    """``published`` or ``local`` for a banded scale (undeclared counts as local), else None."""
    if not scale.bands:
        return None
    return scale.bands_source.source if scale.bands_source else "local"


def _complete_value(scale: Scale, total: Decimal) -> Decimal:
    """The value ``scale`` gives a complete answer set summing to ``total``."""
    n = len(scale.items)
    if scale.method == "mean":
        return _round(total / n, scale)
    return total * 2 if scale.method == "sum_then_double" else total


def _crosses_cutoff(
    instrument: Instrument, scale: Scale, scored: Mapping[int, int], raw_sum: int
) -> bool:
    """Whether the unanswered items could put the complete score in another band.

    The lowest and highest complete scores are the answered sum plus every missing item at
    its lowest (or highest) option; reversal keeps an item's range, so it does not matter.
    """
    lo = hi = Decimal(raw_sum)
    for pos in scale.items:
        if pos not in scored:
            opts = [o.value for o in instrument.options(pos)]
            lo += min(opts)
            hi += max(opts)
    low_band = band_for(scale, _complete_value(scale, lo))
    high_band = band_for(scale, _complete_value(scale, hi))
    return low_band != high_band


def _round(value: Decimal, scale: Scale) -> Decimal:
    quantum = Decimal(1).scaleb(-scale.rounding.decimals)
    return value.quantize(quantum, rounding=_ROUNDING[scale.rounding.method])


def score_scale(instrument: Instrument, scale: Scale, values: Mapping[int, int]) -> ScaleScore:
    """Score one scale from resolved item values (missing items absent from ``values``)."""
    scored: dict[int, int] = {}
    for pos in scale.items:
        if pos not in values:
            continue
        v = values[pos]
        if pos in scale.reversed:
            opts = [o.value for o in instrument.options(pos)]
            v = min(opts) + max(opts) - v
        scored[pos] = v
    n_items = len(scale.items)
    answered = len(scored)
    missing = n_items - answered
    raw_sum = sum(scored.values())
    if answered == 0 or missing > scale.missing_allowed:
        return ScaleScore(scale.code, None, None, None, missing, False, raw_sum, scored)
    total = Decimal(raw_sum)
    if scale.method == "mean":
        value = _round(total / answered, scale)
    else:
        value = _round(total * n_items / answered, scale) if missing else total
        if scale.method == "sum_then_double":
            value *= 2
    if value < scale.min or value > scale.max:  # a spec whose min/max disagree with its items
        raise PermanentError(
            f"{instrument.code}/{scale.code}: value {value} outside the declared "
            f"[{scale.min}, {scale.max}]; fix the spec",
            code="E_SPEC_RANGE",
        )
    band = band_for(scale, value)
    if scale.bands and band is None:
        raise PermanentError(f"{instrument.code}/{scale.code}: no band for {value}")
    crosses = bool(missing and scale.bands) and _crosses_cutoff(instrument, scale, scored, raw_sum)
    return _scale_score(scale, value, band, missing, raw_sum, scored, crosses)


def _scale_score(
    scale: Scale,
    value: Decimal,
    band: Band | None,
    missing: int,
    raw_sum: int,
    scored: dict[int, int],
    crosses: bool = False,
) -> ScaleScore:
    number: int | float = int(value) if value == value.to_integral_value() else float(value)
    return ScaleScore(
        scale.code,
        number,
        band.code if band else None,
        band.label if band else None,
        missing,
        missing > 0,
        raw_sum,
        scored,
        crosses,
    )


def ended_at_gate(scale: Scale, value: Decimal) -> ScaleScore:
    """The score of a screen that ended at its gate: complete, nothing missing or prorated."""
    return _scale_score(scale, value, band_for(scale, value), 0, 0, {})


def _gate_status(instrument: Instrument, values: Mapping[int, int]) -> str | None:
    gate = instrument.gate
    if gate is None:
        return None
    if gate.item not in values:
        return "unanswered"
    return "passed" if values[gate.item] in gate.continue_values else "ended"


def score(
    instrument: Instrument, answers: Mapping[int, Any] | Mapping[str, Any]
) -> InstrumentScore:
    """Score every scale of ``instrument`` (safety rules: :func:`.safety.evaluate_rules`).

    Args:
        answers: 1-based item position (int or numeric string) -> numeric score
            or response text; ``None`` or an absent item counts as missing.
    """
    resolved: dict[int, ItemAnswer] = {}
    for key, answer in answers.items():
        try:
            position = int(key)
        except (TypeError, ValueError):
            raise PermanentError(
                f"{instrument.code}: answer key {key!r} is not an item position", code="E_ITEM"
            ) from None
        if answer is None:
            continue
        resolved[position] = ItemAnswer(
            position, answer, resolve_answer(instrument, position, answer)
        )
    values = {pos: a.value for pos, a in resolved.items()}
    gate = _gate_status(instrument, values)
    if gate == "ended" and instrument.gate is not None:
        ended = instrument.gate.ended_value
        scales = [ended_at_gate(scale, ended) for scale in instrument.scales]
    else:
        scales = [score_scale(instrument, scale, values) for scale in instrument.scales]
    return InstrumentScore(instrument.code, instrument.version, resolved, scales, gate)
