"""Scoring of every shipped instrument: hand-computed cases, reversals, proration, bands, flags."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from kit import JOBS as CATALOG
from pydantic import ValidationError

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.instruments import get_instrument, load_bindings, load_instruments
from lorchestra_dagster.instruments.models import Scale
from lorchestra_dagster.instruments.scorer import score, score_scale

pytestmark = pytest.mark.unit

CODES = [
    "phq9", "gad7", "pss_10", "fscrs", "phlms_10", "phlms_20", "pc_ptsd_5", "msi_bpd",
    "ipip_neo_60_c", "sleep_disturbances", "joy", "safe",
]  # fmt: skip
#: Shipped for a form that asks all 20 items (phlms_20), or for a practice form the demo has not
#: (sleep_disturbances, joy, safe: the original registry's practice scales).
UNBOUND = {"phlms_20", "sleep_disturbances", "joy", "safe"}


def _scale(result, code):
    return next(s for s in result.scales if s.code == code)


def _answers(values):
    """1-based positions for a list of values."""
    return {i: v for i, v in enumerate(values, start=1)}


# ---------------------------------------------------------------- catalog


def test_every_required_instrument_ships_with_a_cited_source():
    instruments = load_instruments(CATALOG)
    assert set(CODES) <= set(instruments)
    for code in CODES:
        spec = instruments[code]
        assert len(spec.source) > 60, code
        primary = spec.scales[0].code
        if code not in ("fscrs", "phlms_10", "phlms_20"):
            assert primary == f"{code}_total"


def test_bindings_cover_the_demo_forms():
    bindings = load_bindings(CATALOG)
    assert set(bindings) == {"intake_01", "intake_02", "followup"}
    assert bindings["intake_01"].instruments[:2] == ["phq9", "gad7"]
    assert {"phq9", "gad7"} <= set(bindings["followup"].instruments)
    bound = {i for b in bindings.values() for i in b.instruments}
    assert set(CODES) - UNBOUND <= bound
    for b in bindings.values():
        for code in b.instruments:
            items = {q.item for q in b.questions if q.instrument == code}
            assert items == set(range(1, len(get_instrument(CATALOG, code).items) + 1))


# ---------------------------------------------------------------- every achievable score


def _achievable(spec, scale: Scale):
    """Every reachable (answered count, sum of scored values) with one witness answer set."""
    states: dict[tuple[int, int], dict[int, int]] = {(0, 0): {}}
    for pos in scale.items:
        opts = [o.value for o in spec.options(pos)]
        nxt: dict[tuple[int, int], dict[int, int]] = {}
        for (k, s), witness in states.items():
            nxt.setdefault((k, s), witness)  # item missing
            for raw in opts:
                scored = min(opts) + max(opts) - raw if pos in scale.reversed else raw
                nxt.setdefault((k + 1, s + scored), {**witness, pos: raw})
        states = nxt
    n = len(scale.items)
    return {key: w for key, w in states.items() if key[0] >= n - scale.missing_allowed}


@pytest.mark.parametrize("code", CODES)
def test_every_achievable_score_lands_in_exactly_one_band(code):
    spec = get_instrument(CATALOG, code)
    for scale in spec.scales:
        seen = set()
        for (k, _), witness in _achievable(spec, scale).items():
            result = score_scale(spec, scale, witness)
            assert result.value is not None
            value = Decimal(str(result.value))
            assert scale.min <= value <= scale.max, (scale.code, value)
            assert result.missing == len(scale.items) - k
            assert result.prorated == (k < len(scale.items))
            seen.add(value)
            if scale.bands:
                hits = [b for b in scale.bands if b.min <= value <= b.max]
                assert len(hits) == 1, (scale.code, value)
                assert result.severity_code == hits[0].code
            else:
                assert result.severity_code is None
        assert min(seen) == scale.min and max(seen) == scale.max, scale.code


@pytest.mark.parametrize("code", ["pc_ptsd_5", "msi_bpd", "gad7"])
def test_short_instruments_enumerate_every_answer_set(code):
    """Every complete answer set and every set with an allowed missing item."""
    spec = get_instrument(CATALOG, code)
    scale = spec.scales[0]
    n = len(scale.items)
    option_lists = [[o.value for o in spec.options(p)] for p in scale.items]
    count = 0
    patterns = [None] + (list(scale.items) if scale.missing_allowed else [])
    for missing in patterns:
        lists = [
            [None] if pos == missing else opts
            for pos, opts in zip(scale.items, option_lists, strict=True)
        ]
        for combo in itertools.product(*lists):
            answers = {pos: v for pos, v in zip(scale.items, combo, strict=True) if v is not None}
            s = _scale(score(spec, answers), scale.code)
            total = sum(answers.values())
            if missing is None:
                assert s.value == total
            else:
                expected = (Decimal(total) * n / (n - 1)).quantize(Decimal(1), "ROUND_HALF_UP")
                assert s.value == int(expected)
            assert sum(b.min <= s.value <= b.max for b in scale.bands) == 1
            count += 1
    assert count >= 2 ** len(scale.items)


# ---------------------------------------------------------------- PHQ-9


@pytest.mark.parametrize(
    ("values", "total", "band"),
    [
        ([0] * 9, 0, "minimal"),
        ([1, 1, 1, 1, 0, 0, 0, 0, 0], 4, "minimal"),
        ([1, 1, 1, 1, 1, 0, 0, 0, 0], 5, "mild"),
        ([1] * 9, 9, "mild"),
        ([2, 2, 2, 2, 2, 0, 0, 0, 0], 10, "moderate"),
        ([2, 2, 2, 2, 2, 2, 2, 0, 0], 14, "moderate"),
        ([3, 3, 3, 3, 3, 0, 0, 0, 0], 15, "moderately_severe"),
        ([3, 3, 3, 3, 3, 2, 2, 0, 0], 19, "moderately_severe"),
        ([3, 3, 3, 3, 3, 3, 2, 0, 0], 20, "severe"),
        ([3] * 9, 27, "severe"),
        ([1, 2, 3, 0, 1, 2, 3, 0, 1], 13, "moderate"),
    ],
)
def test_phq9_hand_computed_and_every_band_boundary(values, total, band):
    s = score(get_instrument(CATALOG, "phq9"), _answers(values)).scales[0]
    assert (s.code, s.value, s.severity_code, s.missing, s.prorated) == (
        "phq9_total",
        total,
        band,
        0,
        False,
    )


def test_phq9_item9_flag_whatever_the_total():
    from lorchestra_dagster.instruments.safety import evaluate_rules

    phq9 = get_instrument(CATALOG, "phq9")
    low = _answers([0] * 8 + [1])
    assert score(phq9, low).scales[0].value == 1
    assert score(phq9, low).scales[0].severity_code == "minimal"
    assert [f.code for f in evaluate_rules(phq9, low)] == ["phq9_item9"]
    high = _answers([3] * 8 + [0])
    assert score(phq9, high).scales[0].value == 24 and evaluate_rules(phq9, high) == []
    text = {9: "Nearly every day"}  # too many missing to score, still flagged
    assert score(phq9, text).scales[0].value is None
    assert [f.code for f in evaluate_rules(phq9, text)] == ["phq9_item9"]


def test_phq9_item10_is_kept_apart():
    phq9 = get_instrument(CATALOG, "phq9")
    base = score(phq9, _answers([1] * 9)).scales[0].value
    with_10 = score(phq9, {**_answers([1] * 9), 10: "Extremely difficult"})
    assert with_10.scales[0].value == base == 9
    assert with_10.answers[10].value == 3


def test_phq9_proration_rounds_half_up():
    phq9 = get_instrument(CATALOG, "phq9")
    # 8 answered items summing to 4: 4 x 9/8 = 4.5 -> 5 (mild); banker's rounding would give 4.
    s = score(phq9, _answers([1, 1, 1, 1, 0, 0, 0, 0, None])).scales[0]
    assert (s.value, s.severity_code, s.missing, s.prorated) == (5, "mild", 1, True)
    # 13 x 9/8 = 14.625 -> 15
    s = score(phq9, _answers([2, 2, 2, 2, 2, 1, 1, 1, None])).scales[0]
    assert (s.value, s.severity_code) == (15, "moderately_severe")
    # two missing: not scored
    s = score(phq9, _answers([3] * 7)).scales[0]
    assert (s.value, s.severity_code, s.missing) == (None, None, 2)


# ---------------------------------------------------------------- the others


@pytest.mark.parametrize(
    ("values", "total", "band"),
    [([0] * 7, 0, "minimal"), ([1, 1, 1, 1, 0, 0, 0], 4, "minimal"), ([1] * 5 + [0, 0], 5, "mild"),
     ([2] * 4 + [1, 0, 0], 9, "mild"), ([2] * 5 + [0, 0], 10, "moderate"),
     ([2] * 7, 14, "moderate"), ([3] * 5 + [0, 0], 15, "severe"), ([3] * 7, 21, "severe")],
)  # fmt: skip
def test_gad7_bands(values, total, band):
    s = score(get_instrument(CATALOG, "gad7"), _answers(values)).scales[0]
    assert (s.value, s.severity_code) == (total, band)


def test_pss10_reversed_items():
    pss = get_instrument(CATALOG, "pss_10")
    # Items 4, 5, 7, 8 are reversed (4 - value).
    assert score(pss, _answers([0] * 10)).scales[0].value == 16
    assert score(pss, _answers([4] * 10)).scales[0].value == 24
    worst = [4, 4, 4, 0, 0, 4, 0, 0, 4, 4]
    s = score(pss, _answers(worst)).scales[0]
    assert (s.value, s.severity_code) == (40, "high")
    best = [0, 0, 0, "Very often", "Very often", 0, "very often", "VERY OFTEN", 0, 0]
    s = score(pss, _answers(best)).scales[0]
    assert (s.value, s.severity_code) == (0, "low")
    assert s.scored_values[4] == 0 and s.scored_values[1] == 0
    # 13/14 and 26/27 boundaries
    assert score(pss, _answers([4, 4, 4, 4, 4, 1, 4, 4, 0, 0])).scales[0].severity_code == "low"
    assert score(pss, _answers([4, 4, 4, 4, 4, 2, 4, 4, 0, 0])).scales[0].value == 14
    s = score(pss, _answers([4, 4, 4, 0, 0, 4, 0, 0, 2, 0])).scales[0]
    assert (s.value, s.severity_code) == (34, "high")
    # 16 + (4-2) + (4-1) + (4-0) + (4-2) = 27; raising item 5 to 2 gives 26
    s = score(pss, _answers([4, 4, 4, 2, 1, 4, 0, 2, 0, 0])).scales[0]
    assert (s.value, s.severity_code) == (27, "high")
    s = score(pss, _answers([4, 4, 4, 2, 2, 4, 0, 2, 0, 0])).scales[0]
    assert (s.value, s.severity_code) == (26, "moderate")


def test_fscrs_subscales_have_no_bands():
    f = get_instrument(CATALOG, "fscrs")
    r = score(f, _answers([4] * 22))
    got = {s.code: (s.value, s.severity_code) for s in r.scales}
    assert got == {
        "fscrs_inadequate_self": (36, None),
        "fscrs_hated_self": (20, None),
        "fscrs_reassured_self": (32, None),
    }
    one_missing = _answers([1] * 22)
    del one_missing[9]  # a hated-self item: that subscale allows no missing item
    got = {s.code: s.value for s in score(f, one_missing).scales}
    assert got == {"fscrs_inadequate_self": 9, "fscrs_hated_self": None, "fscrs_reassured_self": 8}


def test_phlms10_sum_then_double_with_reversed_acceptance():
    p = get_instrument(CATALOG, "phlms_10")
    awareness = {1: 5, 4: 5, 7: 5, 8: 5, 10: 5}
    acceptance = {2: 1, 3: 1, 5: 1, 6: 1, 9: 1}  # reversed: 6 - 1 = 5 each
    r = score(p, {**awareness, **acceptance})
    got = {s.code: (s.value, s.severity_code) for s in r.scales}
    assert got == {"phlms_10_awareness": (50, "high"), "phlms_10_acceptance": (50, "high")}
    r = score(p, {1: 4, 4: 4, 7: 4, 8: 5, 2: 3, 3: 3, 5: 3, 6: 3, 9: 3})
    aw = _scale(r, "phlms_10_awareness")
    # 17 x 5/4 = 21.25 -> 21, doubled 42
    assert (aw.value, aw.severity_code, aw.prorated) == (42, "high", True)
    assert _scale(r, "phlms_10_acceptance").value == 30


def test_ipip_conscientiousness_domain_and_facets():
    ipip = get_instrument(CATALOG, "ipip_neo_60_c")
    # Best case: positively keyed items 5, negatively keyed (4, 6, 10, 11, 12) 1.
    best = {i: (1 if i in (4, 6, 10, 11, 12) else 5) for i in range(1, 13)}
    r = score(ipip, best)
    assert {s.code: s.value for s in r.scales} == {
        "ipip_neo_60_c_total": 60,
        "ipip_neo_60_c_self_efficacy": 10,
        "ipip_neo_60_c_orderliness": 10,
        "ipip_neo_60_c_dutifulness": 10,
        "ipip_neo_60_c_achievement_striving": 10,
        "ipip_neo_60_c_self_discipline": 10,
        "ipip_neo_60_c_cautiousness": 10,
    }
    r = score(ipip, {i: "Neither accurate nor inaccurate" for i in range(1, 13)})
    assert _scale(r, "ipip_neo_60_c_total").value == 36
    assert _scale(r, "ipip_neo_60_c_total").severity_code == "average"
    assert _scale(r, "ipip_neo_60_c_cautiousness").severity_code == "average"


@pytest.mark.parametrize(("code", "yes", "band"), [
    ("pc_ptsd_5", 2, "negative"), ("pc_ptsd_5", 3, "positive"),
    ("msi_bpd", 6, "negative"), ("msi_bpd", 7, "positive"),
])  # fmt: skip
def test_screen_cut_points(code, yes, band):
    spec = get_instrument(CATALOG, code)
    answers = {i: ("Yes" if i <= yes else "no") for i in spec.scales[0].items}
    if spec.gate is not None:
        answers[spec.gate.item] = "Yes"  # trauma exposure reported: the symptoms count
    s = score(spec, answers).scales[0]
    assert (s.value, s.severity_code) == (yes, band)


# ---------------------------------------------------------------- errors and spec checks


def test_answer_errors_are_clear():
    phq9 = get_instrument(CATALOG, "phq9")
    with pytest.raises(PermanentError, match="value 4 out of range"):
        score(phq9, {1: 4})
    with pytest.raises(PermanentError, match="unknown response text"):
        score(phq9, {1: "sometimes"})
    with pytest.raises(PermanentError, match="no item 11"):
        score(phq9, {11: 0})
    with pytest.raises(PermanentError, match="not an item position"):
        score(phq9, {"first": 0})
    with pytest.raises(PermanentError, match="unknown instrument 'bdi'"):
        get_instrument(CATALOG, "bdi")
    assert score(phq9, {"1": "2", "2": 2.0}).answers[1].value == 2


def _scale_spec(**kw):
    base = dict(code="x_total", name="x", items=[1, 2], method="sum", min=0, max=6)
    return Scale.model_validate({**base, **kw})


def test_bands_must_tile_the_range():
    ok = [
        {"min": 0, "max": 2, "code": "a", "label": "A"},
        {"min": 3, "max": 6, "code": "b", "label": "B"},
    ]
    assert _scale_spec(bands=ok).bands
    with pytest.raises(ValidationError, match="gap or overlap"):
        _scale_spec(bands=[ok[0], {**ok[1], "min": 4}])
    with pytest.raises(ValidationError, match="gap or overlap"):
        _scale_spec(bands=[ok[0], {**ok[1], "min": 2}])
    with pytest.raises(ValidationError, match="must start at"):
        _scale_spec(bands=[{**ok[0], "min": 1}, ok[1]])
    with pytest.raises(ValidationError, match="missing_allowed"):
        _scale_spec(missing_allowed=2)
    with pytest.raises(ValidationError, match="reversed items"):
        _scale_spec(reversed=[3])


def test_mean_method_rounds_to_declared_decimals():
    from lorchestra_dagster.instruments.models import Instrument

    spec = Instrument.model_validate(
        {
            "code": "demo", "version": "1.0.0", "name": "Demo", "source": "test",
            "response_sets": {"r": [{"text": t, "value": v} for v, t in enumerate("abcd")]},
            "items": [{"position": i, "text": f"q{i}", "response_set": "r"} for i in (1, 2, 3)],
            "scales": [{
                "code": "demo_mean", "name": "mean", "items": [1, 2, 3], "method": "mean",
                "rounding": {"method": "half_up", "decimals": 2}, "min": 0, "max": 3,
                "bands": [{"min": 0, "max": "1.49", "code": "low", "label": "Low"},
                          {"min": "1.50", "max": 3, "code": "high", "label": "High"}],
            }],
        }
    )  # fmt: skip
    s = score(spec, {1: 1, 2: 1, 3: 2}).scales[0]
    assert (s.value, s.severity_code) == (1.33, "low")
    s = score(spec, {1: 1, 2: 2, 3: 2}).scales[0]
    assert (s.value, s.severity_code) == (1.67, "high")
