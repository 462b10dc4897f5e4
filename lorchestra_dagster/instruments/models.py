"""Instrument specs and form bindings as typed data.

Scoring rules are clinical facts, so they live in YAML that a clinician can
read and cite (``<catalog>/instruments/<code>.yaml``), and the models here
refuse a spec whose bands leave a gap or overlap: every achievable score must
land in exactly one band, which the original lorchestra did not guarantee.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResponseOption(_Model):
    """One answer a respondent can pick, shown as ``text`` and scored as ``value``."""

    text: str = Field(description="Display text exactly as the form shows it")
    value: int = Field(description="Numeric score of this option before any reversal")
    aliases: list[str] = Field(
        default_factory=list,
        description="Other texts that mean this option (a reworded form, the original "
        "finalform's response aliases); matched like the text, case-insensitively",
    )

    def texts(self) -> list[str]:
        """The option's text and aliases, normalised as answers are matched."""
        return [normalise_text(t) for t in (self.text, *self.aliases)]


def normalise_text(text: str) -> str:
    """Case-folded, whitespace-collapsed text: how answers, aliases and bound texts compare."""
    return " ".join(text.split()).casefold()


class Item(_Model):
    """One question of an instrument, addressed by its 1-based position."""

    position: int = Field(ge=1, description="1-based position of the item in the instrument")
    text: str = Field(description="Item wording as presented to the respondent")
    response_set: str = Field(description="Key into the instrument's response_sets")
    scored: bool = Field(
        default=True,
        description="False for items kept apart from every scale (e.g. PHQ-9 item 10)",
    )


class Band(_Model):
    """An interpretation band: inclusive ``[min, max]`` on the scale's value grid."""

    min: Decimal = Field(description="Lowest value in the band (inclusive)")
    max: Decimal = Field(description="Highest value in the band (inclusive)")
    code: str = Field(pattern=r"^[a-z0-9_]+$", description="Stable severity code")
    label: str = Field(description="Human label of the band")


class BandsSource(_Model):
    """Where a scale's cut-offs come from, so the vault can tell published from local bands."""

    source: Literal["published", "local"] = Field(
        description="published: cut-offs from a cited paper or manual; local: this practice's "
        "convention (shown as 'local bands' wherever the bands are shown)"
    )
    citation: str = Field(default="", description="Where the cut-offs are published")
    note: str = Field(default="", description="Whose convention local bands are, and why")

    @model_validator(mode="after")
    def _check(self) -> BandsSource:
        if self.source == "published" and not self.citation.strip():
            raise ValueError("published bands need a citation")
        return self


class Rounding(_Model):
    """How a prorated or averaged value is rounded; declared so scores are reproducible."""

    method: Literal["half_up", "half_even", "floor", "ceil"] = Field(
        default="half_up", description="Rounding rule applied to the scale value"
    )
    decimals: int = Field(default=0, ge=0, le=4, description="Decimals kept after rounding")


class Scale(_Model):
    """A score computed from items: method, reversals, missing rule, bands."""

    code: str = Field(pattern=r"^[a-z0-9_]+$", description="Measure code, e.g. phq9_total")
    name: str = Field(description="Human name of the scale")
    items: list[int] = Field(min_length=1, description="Positions of the items summed")
    method: Literal["sum", "mean", "sum_then_double"] = Field(
        description="sum; mean of answered items; or (prorated, rounded) sum times two"
    )
    reversed: list[int] = Field(
        default_factory=list,
        description="Positions scored as (lowest option + highest option) - value",
    )
    missing_allowed: int = Field(
        default=0,
        ge=0,
        description="Items that may be missing; the sum is then prorated to all items",
    )
    rounding: Rounding = Field(
        default_factory=Rounding, description="Rounding of prorated or mean values"
    )
    min: Decimal = Field(description="Lowest achievable value")
    max: Decimal = Field(description="Highest achievable value")
    bands: list[Band] = Field(
        default_factory=list,
        description="Interpretation bands tiling [min, max]; empty when no cut-offs exist",
    )
    bands_source: BandsSource | None = Field(
        default=None,
        description="Where the bands come from; bands without one are treated as local",
    )

    @model_validator(mode="after")
    def _check(self) -> Scale:
        if len(set(self.items)) != len(self.items):
            raise ValueError(f"scale {self.code}: duplicate item positions")
        extra = set(self.reversed) - set(self.items)
        if extra:
            raise ValueError(f"scale {self.code}: reversed items {sorted(extra)} not in items")
        if self.missing_allowed >= len(self.items):
            raise ValueError(f"scale {self.code}: missing_allowed must be below the item count")
        if self.bands_source is not None and not self.bands:
            raise ValueError(f"scale {self.code}: bands_source given but no bands")
        if self.bands:
            step = Decimal(1).scaleb(-self.rounding.decimals)
            bands = sorted(self.bands, key=lambda b: b.min)
            if bands[0].min != self.min or bands[-1].max != self.max:
                raise ValueError(
                    f"scale {self.code}: bands must start at {self.min} and end at {self.max}"
                )
            for band in bands:
                if band.min > band.max:
                    raise ValueError(f"scale {self.code}: band {band.code} has min > max")
            for prev, nxt in zip(bands, bands[1:], strict=False):
                if nxt.min != prev.max + step:
                    raise ValueError(
                        f"scale {self.code}: bands {prev.code} and {nxt.code} leave a gap or "
                        f"overlap (expected {nxt.code} to start at {prev.max + step})"
                    )
        return self


#: Alert severities, most urgent first (``SEVERITY_RANK`` in :mod:`.safety` orders them).
Severity = Literal["critical", "high", "warning"]


class RuleCondition(_Model):
    """When a safety rule fires, judged on one item's answer alone.

    ``unanswered`` fires when the item has no readable answer (skipped, or an
    answer that matches none of its options): a risk question left blank is a
    signal of its own, never a silent zero.
    """

    op: Literal[">=", ">", "=", "in", "unanswered"] = Field(
        description="Comparison with the item's numeric value, or 'unanswered'"
    )
    value: int | list[int] | None = Field(
        default=None, description="Threshold (>=, >, =), values (in); none for unanswered"
    )

    @model_validator(mode="after")
    def _check(self) -> RuleCondition:
        if self.op == "unanswered":
            if self.value is not None:
                raise ValueError("condition 'unanswered' takes no value")
        elif self.op == "in":
            if not isinstance(self.value, list) or not self.value:
                raise ValueError("condition 'in' needs a non-empty list of values")
        elif not isinstance(self.value, int):
            raise ValueError(f"condition {self.op!r} needs an integer value")
        return self

    def holds(self, value: int | None) -> bool:
        """True when the rule fires for ``value`` (``None``: no readable answer)."""
        if self.op == "unanswered":
            return value is None
        if value is None:
            return False
        if isinstance(self.value, list):  # op "in" (the validator pairs lists with it)
            return value in self.value
        if self.value is None:  # unreachable past the validator; never guess a threshold
            raise ValueError(f"condition {self.op!r} has no threshold")
        threshold = self.value
        return (
            value >= threshold
            if self.op == ">="
            else (value > threshold if self.op == ">" else value == threshold)
        )


class SafetyRule(_Model):
    """A clinical safety rule on one item, evaluated whatever the total and before scoring.

    Rules are data so a practice can add its own (MSI-BPD item 2, FSCRS self-harm
    items) without code; ``enabled: false`` keeps a rule on file but silent.
    """

    code: str = Field(pattern=r"^[a-z0-9_]+$", description="Alert code, e.g. phq9_item9")
    item: int = Field(ge=1, description="Position of the item watched")
    condition: RuleCondition = Field(description="When the rule fires")
    severity: Severity = Field(description="critical notifies at once; high; warning")
    message: str = Field(description="What the clinician should do; never includes answers")
    enabled: bool = Field(default=True, description="False keeps the rule on file but silent")


class Gate(_Model):
    """An entry question that ends the screen when the answer does not open it.

    PC-PTSD-5 asks about lifetime trauma exposure first; a respondent who reports
    none has completed the screen with a total of 0, and symptom answers given
    anyway are not counted (the published rule, not a missing-item case).
    """

    item: int = Field(ge=1, description="Position of the gate item (an unscored item)")
    continue_values: list[int] = Field(
        min_length=1, description="Item values that open the scored items (e.g. Yes = 1)"
    )
    ended_value: Decimal = Field(
        description="Value every scale takes when the screen ends at the gate"
    )
    ended_note: str = Field(
        default="screen ended at its first question",
        description="What the vault prints beside a score that ended at the gate",
    )


class Instrument(_Model):
    """A validated questionnaire with its scoring rules and their published source."""

    code: str = Field(pattern=r"^[a-z0-9_]+$", description="Instrument code, e.g. phq9")
    version: str = Field(description="Semantic version of this spec")
    name: str = Field(description="Full name of the instrument")
    description: str = Field(default="", description="What it measures")
    source: str = Field(description="Citation of the scoring rules (and of any cut-offs)")
    origin: Literal["published", "local"] = Field(
        default="published",
        description="published: the form as its authors published it; local: this practice's "
        "adaptation (a short form, reworded items), scored by the practice's own rules",
    )
    instructions: str = Field(default="", description="Stem shown above the items")
    response_sets: dict[str, list[ResponseOption]] = Field(
        description="Named option lists shared by items"
    )
    items: list[Item] = Field(min_length=1, description="Items in presentation order")
    scales: list[Scale] = Field(min_length=1, description="Scales; the first is the primary one")
    safety_rules: list[SafetyRule] = Field(
        default_factory=list, description="Item-level safety rules (docs/clinical-safety.md)"
    )
    gate: Gate | None = Field(
        default=None, description="Entry question that can end the screen before the scales"
    )

    @model_validator(mode="after")
    def _check(self) -> Instrument:
        positions = [it.position for it in self.items]
        if positions != list(range(1, len(positions) + 1)):
            raise ValueError(f"instrument {self.code}: item positions must be 1..{len(positions)}")
        for it in self.items:
            if it.response_set not in self.response_sets:
                raise ValueError(
                    f"instrument {self.code}: item {it.position} uses unknown response_set "
                    f"{it.response_set!r}"
                )
        for name, opts in self.response_sets.items():
            texts = [t for o in opts for t in o.texts()]
            if len(set(texts)) != len(texts) or len({o.value for o in opts}) != len(opts):
                raise ValueError(f"instrument {self.code}: response_set {name} repeats an option")
        codes = [s.code for s in self.scales]
        if len(set(codes)) != len(codes):
            raise ValueError(f"instrument {self.code}: duplicate scale codes")
        for scale in self.scales:
            for pos in scale.items:
                if pos > len(self.items) or not self.items[pos - 1].scored:
                    raise ValueError(
                        f"instrument {self.code}: scale {scale.code} uses item {pos}, "
                        "which does not exist or is not scored"
                    )
        rule_codes = [r.code for r in self.safety_rules]
        if len(set(rule_codes)) != len(rule_codes):
            raise ValueError(f"instrument {self.code}: duplicate safety rule codes")
        for rule in self.safety_rules:
            if rule.item > len(self.items):
                raise ValueError(f"instrument {self.code}: rule {rule.code} on unknown item")
            if rule.condition.op != "unanswered" and not any(
                rule.condition.holds(o.value) for o in self.options(rule.item)
            ):
                raise ValueError(
                    f"instrument {self.code}: rule {rule.code} can never fire "
                    f"(no option of item {rule.item} meets its condition)"
                )
        if self.gate is not None:
            self._check_gate(self.gate)
        return self

    def _check_gate(self, gate: Gate) -> None:
        if gate.item > len(self.items) or self.items[gate.item - 1].scored:
            raise ValueError(
                f"instrument {self.code}: gate item {gate.item} must exist and be unscored"
            )
        values = {o.value for o in self.options(gate.item)}
        if not set(gate.continue_values) < values:
            raise ValueError(
                f"instrument {self.code}: gate continue_values must be some, not all, of the "
                f"gate item's option values {sorted(values)}"
            )
        for scale in self.scales:
            if not scale.min <= gate.ended_value <= scale.max:
                raise ValueError(
                    f"instrument {self.code}: gate ended_value outside scale {scale.code}"
                )

    def item(self, position: int) -> Item:
        return self.items[position - 1]

    def options(self, position: int) -> list[ResponseOption]:
        return self.response_sets[self.item(position).response_set]


class QuestionBinding(_Model):
    """Maps one form question to one instrument item.

    A question is found by exactly one key: its ``question_id`` (Google Forms
    questionId; the original finalform's ``by: field_key``), its ``position`` in
    the form (``by: position``) or its wording (``by: text``, compared
    case-insensitively with collapsed whitespace). The last two need answers that
    carry ``position`` / ``question_text``.
    """

    question_id: str | None = Field(
        default=None, description="The form's question id (Google Forms questionId)"
    )
    position: int | None = Field(
        default=None, ge=1, description="1-based position of the question in the form"
    )
    question_text: str | None = Field(
        default=None, min_length=1, description="The question's wording as the form shows it"
    )
    instrument: str = Field(description="Instrument code")
    item: int = Field(ge=1, description="1-based item position in the instrument")

    @model_validator(mode="after")
    def _one_key(self) -> QuestionBinding:
        keys = [k for k in (self.question_id, self.position, self.question_text) if k is not None]
        if len(keys) != 1:
            raise ValueError(
                f"{self.instrument} item {self.item}: give exactly one of question_id, "
                "position, question_text"
            )
        return self

    @property
    def key(self) -> tuple[str, str]:
        """``(kind, value)``: what the question is matched on, for lookups and messages."""
        if self.question_id is not None:
            return ("question_id", self.question_id)
        if self.position is not None:
            return ("position", str(self.position))
        return ("question_text", normalise_text(self.question_text or ""))

    @property
    def label(self) -> str:
        """How messages name the question (never an answer)."""
        kind, value = self.key
        return value if kind == "question_id" else f"{kind} {value}"


class Binding(_Model):
    """Maps a form's question ids to instrument items; versioned like any spec."""

    binding_id: str = Field(pattern=r"^[a-z0-9_]+$", description="Binding id (file stem)")
    version: str = Field(description="Semantic version of this binding")
    form_id: str = Field(description="The form this binding reads (payload.form_id)")
    title: str = Field(description="Form title shown to respondents")
    description: str = Field(default="", description="Form description")
    instruments: list[str] = Field(min_length=1, description="Instrument codes, in form order")
    questions: list[QuestionBinding] = Field(min_length=1, description="Question to item map")

    @model_validator(mode="after")
    def _check(self) -> Binding:
        keys = [q.key for q in self.questions]
        if len(set(keys)) != len(keys):
            dup = sorted({k for k in keys if keys.count(k) > 1})[0]
            raise ValueError(f"binding {self.binding_id}: {dup[0]} {dup[1]!r} is bound twice")
        pairs = [(q.instrument, q.item) for q in self.questions]
        if len(set(pairs)) != len(pairs):
            raise ValueError(f"binding {self.binding_id}: an item is bound twice")
        unknown = {q.instrument for q in self.questions} - set(self.instruments)
        if unknown:
            raise ValueError(f"binding {self.binding_id}: instruments {sorted(unknown)} unlisted")
        return self
