"""Safety rules run per item, before and apart from scoring (issue 11, "never miss a flag").

Each test reproduces a failure of the shipped code: a reworded item-10 option that
hid another client's item 9 = 2 and stopped the day, an item 9 skipped and prorated
away without a flag, and rules that lived in code instead of the instrument spec.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from test_finalform import CATALOG, CTX, _intake_01, _response

from lorchestra_dagster.callables import CallContext, get_callable
from lorchestra_dagster.instruments import get_instrument
from lorchestra_dagster.instruments.safety import SEVERITY_RANK, evaluate_rules

pytestmark = pytest.mark.unit

REWORDED = "Very hard for me"  # not an option of PHQ-9 item 10


def _codes(rows: list[dict]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in rows:
        out.setdefault(r["measurement_event_idem_key"], set()).add(r["code"])
    return out


def _with_answer(row: dict, item: int, value: str | None, form: str = "intake_01") -> dict:
    from lorchestra_dagster.instruments import load_bindings

    qid = next(
        q.question_id
        for q in load_bindings(CATALOG)[form].questions
        if (q.instrument, q.item) == ("phq9", item)
    )
    answers = [a for a in row["payload"]["answers"] if a["question_id"] != qid]
    if value is not None:
        answers.append({"question_id": qid, "answer_value": value})
    row["payload"]["answers"] = answers
    return row


def test_bad_item10_answer_quarantines_its_submission_and_hides_no_flag():
    broken = _with_answer(_intake_01("R1"), 10, REWORDED)
    broken = _with_answer(broken, 9, "Several days")
    other = _intake_01("R2")  # item 9 = "More than half the days"
    out = get_callable("finalform")({"items": [broken, other]}, CTX)
    # The day goes on: the good submission is scored, the broken one has no event yet
    # (so the next run reads it again and a fix scores it).
    assert [e["idem_key"] for e in out["items"]] == [other["idem_key"]]
    assert {o["measurement_event_idem_key"] for o in out["observations"]} == {other["idem_key"]}
    flags = _codes(out["safety_flags"])
    assert flags[other["idem_key"]] == {"phq9_item9"}
    assert flags[broken["idem_key"]] == {"phq9_item9", "submission_quarantined"}
    assert out["stats"]["quarantined"] == 1 and out["stats"]["errors"] == 0
    [q] = [r for r in out["safety_flags"] if r["code"] == "submission_quarantined"]
    assert q["flag_id"] == f"{broken['idem_key']}:submission_quarantined"
    assert q["instrument_code"] == "phq9" and q["item"] == 10
    assert "E_ANSWER_TEXT" in q["reason"]
    # key and reason only: never an answer, an email or a name
    dumped = json.dumps(out["safety_flags"])
    assert REWORDED not in dumped and "Galloway" not in dumped and "Several days" not in dumped


def test_item9_skipped_raises_its_own_lower_flag_and_the_proration_is_visible():
    skipped = _with_answer(_intake_01("R3"), 9, None)
    out = get_callable("finalform")({"items": [skipped]}, CTX)
    [flag] = out["safety_flags"]
    assert flag["code"] == "phq9_item9_unanswered" and flag["reason"] == "skipped"
    assert SEVERITY_RANK[flag["severity"]] < SEVERITY_RANK["critical"]
    [phq] = [o for o in out["observations"] if o["measure_code"] == "phq9_total"]
    assert phq["components"]["prorated"] is True
    assert [f["code"] for f in phq["flags"]] == ["phq9_item9_unanswered"]


def test_a_blank_item9_is_skipped_not_a_broken_submission():
    out = get_callable("finalform")({"items": [_with_answer(_intake_01("R6"), 9, "  ")]}, CTX)
    assert [(f["code"], f["reason"]) for f in out["safety_flags"]] == [
        ("phq9_item9_unanswered", "skipped")
    ]
    assert out["stats"]["quarantined"] == 0


def test_unreadable_item9_answer_counts_as_unanswered_not_as_zero():
    row = _with_answer(_intake_01("R4"), 9, "Sometimes, maybe")
    out = get_callable("finalform")({"items": [row]}, CTX)
    codes = {f["code"]: f for f in out["safety_flags"]}
    assert set(codes) == {"phq9_item9_unanswered", "submission_quarantined"}
    assert codes["phq9_item9_unanswered"]["reason"] == "unreadable"


def test_rules_are_per_item_and_independent_of_scoring():
    phq9 = get_instrument(CATALOG, "phq9")
    hits = evaluate_rules(phq9, {9: "Nearly every day", 10: REWORDED, 3: 7})
    assert [(h.code, h.reason, h.value) for h in hits] == [("phq9_item9", "answered", 3)]
    assert evaluate_rules(phq9, {9: 0}) == []
    assert [h.code for h in evaluate_rules(phq9, {})] == ["phq9_item9_unanswered"]


def test_a_practice_adds_a_rule_in_the_spec(tmp_path: Path):
    cat = tmp_path / "jobs"
    shutil.copytree(CATALOG / "instruments", cat / "instruments")
    shutil.copytree(CATALOG / "bindings", cat / "bindings")
    spec_path = cat / "instruments" / "msi_bpd.yaml"
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    spec["safety_rules"] = [
        {
            "code": "msi_bpd_self_harm",
            "item": 2,
            "condition": {"op": ">=", "value": 1},
            "severity": "critical",
            "message": "MSI-BPD item 2 (self-harm) endorsed; assess risk.",
        }
    ]
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    msi = get_instrument(cat, "msi_bpd")
    [rule] = msi.safety_rules
    assert (rule.code, rule.severity, rule.enabled) == ("msi_bpd_self_harm", "critical", True)
    yes = next(o.text for o in msi.options(2) if o.value == 1)
    [hit] = evaluate_rules(msi, {2: yes})
    assert hit.code == "msi_bpd_self_harm" and hit.severity == "critical"
    ctx = CallContext(catalog_dir=cat, home=tmp_path / "home", env={})
    row = _response("intake_02", {("msi_bpd", 2): yes}, "R9")
    out = get_callable("finalform")({"items": [row]}, ctx)
    assert "msi_bpd_self_harm" in {f["code"] for f in out["safety_flags"]}


def test_phq9_ships_its_item9_rules_on():
    rules = {r.code: r for r in get_instrument(CATALOG, "phq9").safety_rules}
    assert rules["phq9_item9"].enabled and rules["phq9_item9"].severity == "critical"
    assert rules["phq9_item9"].item == 9
    assert rules["phq9_item9_unanswered"].condition.op == "unanswered"


def test_a_previously_raised_flag_is_kept_and_marked_inactive_when_the_answer_changes():
    first = get_callable("finalform")({"items": [_intake_01("R5")]}, CTX)
    [raised] = [f for f in first["safety_flags"] if f["code"] == "phq9_item9"]
    assert raised["active"] is True
    edited = _with_answer(_intake_01("R5"), 9, "Not at all")
    again = get_callable("finalform")({"items": [edited], "previous_flags": [raised]}, CTX)
    [cleared] = [f for f in again["safety_flags"] if f["code"] == "phq9_item9"]
    assert cleared["flag_id"] == raised["flag_id"] and cleared["active"] is False


def test_cli_score_names_the_flags_when_an_other_answer_breaks_scoring():
    from typer.testing import CliRunner

    from lorchestra_dagster.cli import app

    answers = json.dumps({"9": "Nearly every day", "10": REWORDED})
    res = CliRunner().invoke(app, ["instruments", "score", "phq9", "--answers", answers,
                                   "--jobs-dir", str(CATALOG)])  # fmt: skip
    assert res.exit_code == 1
    assert "safety flags raised all the same: phq9_item9" in res.output
    assert REWORDED not in res.output
