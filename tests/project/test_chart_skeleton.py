"""The reused chart figure: a client's chart is what a fresh full draw of it would be.

``render_chart`` keeps one figure per panel set and draws only the client's layer on
the pixels of the shared one, so these tests pin the two ways it could go wrong: a
client's artists surviving into the next chart, and the layered draw differing from
matplotlib's own full draw (z-order of alert lines, frame and date axis).
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import numpy as np
import pytest
from matplotlib import style
from PIL import Image

from lorchestra_dagster.callables import charts
from lorchestra_dagster.callables.charts import CHART_INSTRUMENTS, render_chart

pytestmark = pytest.mark.unit

#: Every kind of client layer: points of the three marks, an empty panel, alert days.
BUSY: dict[str, list[tuple[Any, ...]]] = {
    "phq9_total": [
        (date(2026, 1, 5), 14.0),
        (date(2026, 2, 5), 9.0, "crosses_cutoff"),
        (date(2026, 3, 5), 6.0, "prorated"),
    ],
    "pss_10_total": [(date(2026, 1, 20), 22.0)],
}
BUSY_ALERTS = (date(2026, 2, 5), date(2026, 2, 19))
#: Another client: other dates, one panel, no marks, no alerts.
QUIET: dict[str, list[tuple[Any, ...]]] = {"gad7_total": [(date(2025, 6, 1), 3.0)]}


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def fresh(series: dict[str, list[tuple[Any, ...]]], alerts: tuple[date, ...] = ()) -> bytes:
    """The chart drawn on a newly built figure (nothing drawn before it)."""
    charts._skeleton.cache_clear()
    return render_chart(series, CHART_INSTRUMENTS, alerts)


def test_a_chart_does_not_depend_on_the_client_drawn_before() -> None:
    busy, quiet, empty = fresh(BUSY, BUSY_ALERTS), fresh(QUIET), fresh({})
    # One figure, clients in turn: each gets the bytes of its fresh figure.
    charts._skeleton.cache_clear()
    assert render_chart(BUSY, CHART_INSTRUMENTS, BUSY_ALERTS) == busy
    assert render_chart(QUIET) == quiet  # no alert line, legend or point of BUSY left
    assert render_chart({}) == empty  # nor its dates: an empty chart's axis again
    assert render_chart(BUSY, CHART_INSTRUMENTS, BUSY_ALERTS) == busy
    assert len({busy, quiet, empty}) == 3


def test_a_failed_chart_leaves_nothing_in_the_next() -> None:
    quiet = fresh(QUIET)
    with pytest.raises(ValueError):
        render_chart({"phq9_total": [(date(2026, 1, 5), "not a score")]})
    assert render_chart(QUIET) == quiet


def test_the_layered_chart_has_the_pixels_of_a_full_draw() -> None:
    """The same client's artists all added to the figure and drawn by matplotlib at once."""
    layered = fresh(BUSY, BUSY_ALERTS)
    with style.context("default"):
        skeleton = charts._Skeleton(CHART_INSTRUMENTS)
        skeleton._set_dates(BUSY, BUSY_ALERTS)
        marks: set[str] = set()
        for ax, inst in zip(skeleton.axes, CHART_INSTRUMENTS, strict=True):
            pts = sorted(BUSY.get(inst.measure_code) or [])
            charts._client_panel(ax, pts, BUSY_ALERTS, marks)
        charts._figure_notes(skeleton.fig, BUSY_ALERTS, marks)
        skeleton.canvas.draw()
        full = np.asarray(skeleton.canvas.buffer_rgba())[..., :3]
    assert marks == {"prorated", "crosses_cutoff"}
    assert pixels(layered).shape == full.shape
    assert (pixels(layered) == full).all()
