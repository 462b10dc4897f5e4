"""The questionnaire forms the sandbox serves, built from the catalog's bindings.

A form binding maps a Google Form's question ids to instrument items; an
instrument lists each item's response options. The sandbox builds its Forms
API definitions and answers FROM those files, so the scoring side and the
source side agree by construction (``catalog_forms.load_form_specs``). Without a
catalog (or without bindings for a form) the built-in PHQ-9/GAD-7 layout here is used.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

FORM_IDS = ("intake_01", "intake_02", "followup")

FREQUENCY_OPTIONS = ("Not at all", "Several days", "More than half the days", "Nearly every day")

_PHQ9 = (
    "Little interest or pleasure in doing things",
    "Feeling down, depressed, or hopeless",
    "Trouble falling or staying asleep, or sleeping too much",
    "Feeling tired or having little energy",
    "Poor appetite or overeating",
    "Feeling bad about yourself",
    "Trouble concentrating on things",
    "Moving or speaking slowly, or being fidgety or restless",
    "Thoughts that you would be better off dead or of hurting yourself",
)
_GAD7 = (
    "Feeling nervous, anxious, or on edge",
    "Not being able to stop or control worrying",
    "Worrying too much about different things",
    "Trouble relaxing",
    "Being so restless that it is hard to sit still",
    "Becoming easily annoyed or irritable",
    "Feeling afraid as if something awful might happen",
)
_FALLBACK_MEASURES = {"phq9": _PHQ9, "gad7": _GAD7}


@dataclass(frozen=True)
class Question:
    """One choice question of a form, bound to an instrument item."""

    question_id: str
    item_id: str
    measure: str
    title: str
    options: tuple[str, ...]
    risk_item: bool = False
    reversed: bool = False


@dataclass
class FormSpec:
    """A Google Form as the sandbox serves it."""

    form_id: str
    title: str
    questions: list[Question] = field(default_factory=list)


def question_id(form_id: str, measure: str, item: int) -> str:
    """Deterministic 8-hex question id (the bindings' rule: sha256 of form/instrument/item)."""
    return hashlib.sha256(f"{form_id}/{measure}/{item}".encode()).hexdigest()[:8]


def fallback_spec(form_id: str) -> FormSpec:
    spec = FormSpec(form_id=form_id, title=f"{form_id.replace('_', ' ').title()} questionnaire")
    for measure, texts in _FALLBACK_MEASURES.items():
        for n, text in enumerate(texts, start=1):
            item_id = f"{measure}_{n}"
            spec.questions.append(
                Question(
                    question_id=question_id(form_id, measure, n),
                    item_id=item_id,
                    measure=measure,
                    title=text,
                    options=FREQUENCY_OPTIONS,
                    risk_item=(measure == "phq9" and n == 9),
                )
            )
    return spec


def form_definition(spec: FormSpec) -> dict[str, Any]:
    """The forms.get body (https://developers.google.com/forms/api/reference/rest/v1/forms)."""
    items = []
    for q in spec.questions:
        items.append(
            {
                "itemId": hashlib.sha256(f"item:{q.question_id}".encode()).hexdigest()[:8],
                "title": q.title,
                "questionItem": {
                    "question": {
                        "questionId": q.question_id,
                        "required": True,
                        "choiceQuestion": {
                            "type": "RADIO",
                            "options": [{"value": o} for o in q.options],
                        },
                    }
                },
            }
        )
    return {
        "formId": spec.form_id,
        "info": {"title": spec.title, "documentTitle": spec.title},
        "settings": {},
        "revisionId": "00000001",
        "responderUri": f"https://docs.google.com/forms/d/e/{spec.form_id}/viewform",
        "items": items,
    }
