"""Evaluate an instrument's safety rules on raw answers, one item at a time.

Safety must not depend on scoring: a total needs every answer to be valid, a
risk answer needs only itself. So each rule resolves its own item and nothing
else; an unrecognised answer elsewhere (a reworded item-10 option) cannot hide
an item 9 = 2, and an item 9 whose answer cannot be read counts as unanswered,
never as zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.instruments.models import Instrument
from lorchestra_dagster.instruments.scorer import resolve_answer

#: Higher is more urgent; alerts are listed and notified by this order.
SEVERITY_RANK = {"critical": 3, "high": 2, "warning": 1}

Reason = Literal["answered", "skipped", "unreadable"]


@dataclass(frozen=True)
class SafetyHit:
    """One rule that fired: which, why, and the item's value when it had one."""

    code: str
    severity: str
    message: str
    item: int
    reason: Reason
    value: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message,
                "item": self.item, "reason": self.reason}  # fmt: skip


def _item_answers(answers: Mapping[int, Any] | Mapping[str, Any]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for key, value in answers.items():
        try:
            out[int(key)] = value
        except (TypeError, ValueError):
            continue  # not an item position: scoring reports it, rules only read items
    return out


def item_value(instrument: Instrument, position: int, answer: Any) -> tuple[int | None, Reason]:
    """The item's value and how it was read: ``answered``, ``skipped`` or ``unreadable``."""
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        return None, "skipped"
    try:
        return resolve_answer(instrument, position, answer), "answered"
    except PermanentError:
        return None, "unreadable"


def evaluate_rules(
    instrument: Instrument, answers: Mapping[int, Any] | Mapping[str, Any]
) -> list[SafetyHit]:
    """Every enabled rule of ``instrument`` that fires for ``answers``, in spec order.

    Args:
        answers: 1-based item position -> numeric value or response text; an
            absent or ``None`` item is skipped.
    """
    by_item = _item_answers(answers)
    hits = []
    for rule in instrument.safety_rules:
        if not rule.enabled:
            continue
        value, reason = item_value(instrument, rule.item, by_item.get(rule.item))
        if rule.condition.holds(value):
            hits.append(SafetyHit(rule.code, rule.severity, rule.message, rule.item, reason, value))
    return hits
