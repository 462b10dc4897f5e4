"""The measures chart: PHQ-9, GAD-7 and PSS-10 totals over time with their bands.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, so no global
figure state and no GUI backend) at a fixed size and dpi, and encoded without any
PNG text chunk: the same scores give the same bytes on every run, so ``file.write``
leaves the file alone on a rerun. One figure per process is reused for every client
(:class:`_Skeleton`): what every chart shares is drawn once, a client's chart draws
only its own layer on a copy of those pixels, with the same pixels as a full draw.

Matplotlib is imported inside :func:`render_chart` because importing
``lorchestra_dagster.callables`` imports every callable module, and a plotting
library has no business slowing down the CLI.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

WIDTH_IN = 8.0
HEIGHT_IN = 9.0
DPI = 100
#: Pixel size of every chart (width, height).
SIZE_PX = (int(WIDTH_IN * DPI), int(HEIGHT_IN * DPI))
#: Colour of the band threshold lines (tests look for it in the pixels).
THRESHOLD_COLOR = "#c0392b"
LINE_COLOR = "#1f4e79"
#: Open safety alerts: a dotted vertical line per day (apart from the red band thresholds).
ALERT_COLOR = "#7d3c98"
#: Edge colour of a prorated point whose band depends on the unanswered item.
UNCERTAIN_COLOR = "#e67e22"
#: zlib level of the PNGs (see :func:`_png`).
PNG_LEVEL = 3
_RC_LOCK = threading.Lock()
_BAND_FILLS = ("#eef6ee", "#fbf7e6", "#fcefe3", "#f9e4e4", "#f3dada")


@dataclass(frozen=True)
class Band:
    """One interpretation band of a total score: ``low <= score <= high``."""

    low: float
    high: float
    label: str


@dataclass(frozen=True)
class ChartInstrument:
    """A panel of the chart: the total scale to plot and its bands."""

    measure_code: str
    title: str
    max_score: float
    bands: tuple[Band, ...]
    #: The bands are this practice's convention, not published cut-offs (the title says so).
    local_bands: bool = False


#: The three charted totals. Bands: PHQ-9 (Kroenke, Spitzer & Williams 2001),
#: GAD-7 (Spitzer et al. 2006), PSS-10 (the conventional 0-13 low, 14-26 moderate,
#: 27-40 high split; Cohen's scale itself publishes no cut-offs, so they are local bands).
CHART_INSTRUMENTS: tuple[ChartInstrument, ...] = (
    ChartInstrument(
        "phq9_total",
        "PHQ-9 total",
        27,
        (
            Band(0, 4, "minimal"),
            Band(5, 9, "mild"),
            Band(10, 14, "moderate"),
            Band(15, 19, "moderately severe"),
            Band(20, 27, "severe"),
        ),
    ),
    ChartInstrument(
        "gad7_total",
        "GAD-7 total",
        21,
        (
            Band(0, 4, "minimal"),
            Band(5, 9, "mild"),
            Band(10, 14, "moderate"),
            Band(15, 21, "severe"),
        ),
    ),
    ChartInstrument(
        "pss_10_total",
        "PSS-10 total",
        40,
        (Band(0, 13, "low"), Band(14, 26, "moderate"), Band(27, 40, "high")),
        local_bands=True,
    ),
)
CHARTED_CODES = frozenset(i.measure_code for i in CHART_INSTRUMENTS)


def chart_instruments(catalog_dir: Path | None) -> tuple[ChartInstrument, ...]:
    """The charted totals with bands read from the instrument catalog when it has them.

    The catalog (``<catalog>/instruments/*.yaml``) is the one source of truth for
    bands; the built-in :data:`CHART_INSTRUMENTS` (same numbers) only stand in when
    a catalog has no instruments folder, e.g. a minimal test catalog.
    """
    if catalog_dir is None or not (Path(catalog_dir) / "instruments").is_dir():
        return CHART_INSTRUMENTS
    from lorchestra_dagster.instruments import load_instruments
    from lorchestra_dagster.instruments.scorer import bands_origin

    specs = load_instruments(catalog_dir)
    out = []
    for default in CHART_INSTRUMENTS:
        code = default.measure_code.removesuffix("_total")
        scale = next(
            (s for s in getattr(specs.get(code), "scales", []) if s.code == default.measure_code),
            None,
        )
        if scale is None or not scale.bands:
            out.append(default)
            continue
        bands = tuple(
            Band(float(b.min), float(b.max), b.code.replace("_", " "))
            for b in sorted(scale.bands, key=lambda b: b.min)
        )
        out.append(
            ChartInstrument(
                default.measure_code,
                default.title,
                float(scale.max),
                bands,
                local_bands=bands_origin(scale) == "local",
            )
        )
    return tuple(out)


def thresholds(instrument: ChartInstrument) -> list[float]:
    """Scores where a band starts (the lines drawn), lowest band excluded."""
    return [b.low for b in instrument.bands[1:]]


def render_chart(
    series: dict[str, list[tuple[Any, ...]]],
    instruments: tuple[ChartInstrument, ...] = CHART_INSTRUMENTS,
    alert_days: list[date] | tuple[date, ...] = (),
) -> bytes:
    """PNG bytes of one client's chart.

    Args:
        series: points per measure code (``phq9_total`` ...), each ``(date, score)`` or
            ``(date, score, mark)``: mark ``prorated`` draws a hollow point, mark
            ``crosses_cutoff`` (prorated, band uncertain) a hollow point with an orange rim.
            Codes not in ``instruments`` are ignored; an instrument with
            no points gets an empty panel saying so, so the layout never changes.

        instruments: the panels, top to bottom (see :func:`chart_instruments`).
        alert_days: dates of the client's open safety alerts, drawn as a red dotted
            line across every panel with a count above the chart.

    Returns:
        PNG bytes of exactly :data:`SIZE_PX` pixels, identical for identical input.
    """
    from matplotlib import style

    # Matplotlib's own defaults, whatever a matplotlibrc or another caller in this process
    # changed: the bytes must depend on the scores only.
    # style.context swaps the process-wide rcParams, hence one chart at a time (which also
    # keeps the shared skeleton figure to one client at a time).
    with _RC_LOCK, style.context("default"):
        try:
            return _skeleton(instruments).render(series, tuple(sorted(set(alert_days))))
        except Exception:
            # A client drawn halfway may have left artists in the shared figure.
            _skeleton.cache_clear()
            raise


@lru_cache(maxsize=4)
def _skeleton(instruments: tuple[ChartInstrument, ...]) -> _Skeleton:
    """The figure of one panel set, built and its static layer drawn once per process."""
    return _Skeleton(instruments)


class _Skeleton:
    """One figure reused for every client: its static layer is drawn once, as pixels.

    Building the axes and laying out and rasterising the text that is the same for every
    client (titles, band names, score ticks) was most of a chart's cost. The figure is
    built once; its static layer (axes backgrounds, bands, thresholds, titles, the score
    axis) is drawn once with the client's layer hidden and kept as a pixel buffer. A
    client's chart restores that buffer and draws on top of it, in matplotlib's own
    z-order, only what depends on the client: alert lines, the frame (so it lies over the
    alert lines as in a full draw), the date axis, the points and the notes. Every
    client artist is removed again afterwards, so a chart never depends on the client
    drawn before it.
    """

    def __init__(self, instruments: tuple[ChartInstrument, ...]) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
        self.canvas = FigureCanvasAgg(self.fig)
        self.instruments = instruments
        self.axes = list(self.fig.subplots(len(instruments), 1, sharex=True, squeeze=False)[:, 0])
        for ax, inst in zip(self.axes, instruments, strict=True):
            _static_panel(ax, inst)
            # Limits are set for every client; nothing a client adds may move them.
            ax.set_autoscale_on(False)
            # The date axis has no label: a fixed spot skips placing the empty label under
            # every sibling's tick labels on each draw (a fifth of the client layer's time).
            ax.xaxis.set_label_coords(0.5, 0.0)
        self.fig.subplots_adjust(left=0.08, right=0.84, top=0.96, bottom=0.06, hspace=0.35)
        client_layer = [a for ax in self.axes for a in (ax.xaxis, *ax.spines.values())]
        for artist in client_layer:
            artist.set_visible(False)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        for artist in client_layer:
            artist.set_visible(True)

    def render(
        self, series: dict[str, list[tuple[Any, ...]]], alert_days: tuple[date, ...]
    ) -> bytes:
        """PNG bytes of one client's chart on the static layer."""
        added: list[Any] = []  # the client's artists, removed again once drawn
        self._set_dates(series, alert_days)
        renderer = self.canvas.get_renderer()
        self.canvas.restore_region(self.background)
        marks: set[str] = set()
        for ax, inst in zip(self.axes, self.instruments, strict=True):
            mine = _client_panel(ax, sorted(series.get(inst.measure_code) or []), alert_days,
                                 marks)  # fmt: skip
            added += mine
            # A full draw's order: z-order, then the axes' children before its frame
            # and axes (alert lines 2, frame and date axis 2.5, line and note 3, points 4).
            layer = [*mine, *ax.spines.values(), ax.xaxis]
            for artist in sorted(layer, key=lambda a: a.get_zorder()):
                artist.draw(renderer)
        notes = _figure_notes(self.fig, alert_days, marks)
        added += notes
        for artist in notes:
            artist.draw(renderer)
        png = _png(self.canvas.buffer_rgba())
        for artist in added:
            artist.remove()
        return png

    def _set_dates(
        self, series: dict[str, list[tuple[Any, ...]]], alert_days: tuple[date, ...]
    ) -> None:
        """The shared date axis: the client's days with a margin, or a fresh axis's."""
        from matplotlib import dates as mdates
        from matplotlib import ticker

        days = sorted({p[0] for pts in series.values() for p in pts} | set(alert_days))
        bottom = self.axes[-1]
        if not days:
            # What an axis that was never given a date shows: 0..1 with plain ticks.
            bottom.set_xlim(0.0, 1.0)
            bottom.xaxis.set_major_locator(ticker.AutoLocator())
            bottom.xaxis.set_major_formatter(ticker.ScalarFormatter())
            return
        lo, hi = mdates.date2num(days[0]), mdates.date2num(days[-1])
        pad = max((hi - lo) * 0.05, 3.0)
        bottom.set_xlim(lo - pad, hi + pad)
        locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
        bottom.xaxis.set_major_locator(locator)
        bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _static_panel(ax: Any, inst: ChartInstrument) -> None:
    """What a panel shows for every client: bands, their names, thresholds, title, scores."""
    for n, band in enumerate(inst.bands):
        top = inst.bands[n + 1].low if n + 1 < len(inst.bands) else inst.max_score
        ax.axhspan(band.low, top, color=_BAND_FILLS[n % len(_BAND_FILLS)], zorder=0)
        ax.text(
            1.01,
            (band.low + top) / 2 / inst.max_score,
            band.label,
            transform=ax.transAxes,
            fontsize=7,
            va="center",
            ha="left",
            color="#555555",
        )
    for y in thresholds(inst):
        ax.axhline(y, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.2, zorder=1)
    ax.set_ylim(0, inst.max_score)
    # Fixed ticks (band starts and the maximum) and a fixed title position: matplotlib's
    # automatic tick and title layout was ~90% of the render time.
    ax.set_yticks(sorted({0.0, *thresholds(inst), float(inst.max_score)}))
    title = inst.title + (" (local bands)" if inst.local_bands else "")
    ax.set_title(title, fontsize=10, loc="left", y=1.0, pad=4)
    ax.set_ylabel("score", fontsize=8)
    ax.tick_params(labelsize=8)


def _client_panel(
    ax: Any, pts: list[tuple[Any, ...]], alert_days: tuple[date, ...], marks: set[str]
) -> list[Any]:
    """The artists one client adds to a panel; adds the point marks drawn to ``marks``."""
    from matplotlib import dates as mdates

    added: list[Any] = [
        ax.axvline(
            mdates.date2num(d), color=ALERT_COLOR, linestyle=":", linewidth=1.6, zorder=2
        )  # fmt: skip
        for d in alert_days
    ]
    if pts:
        return added + _points(ax, pts, marks)
    note = ax.text(0.5, 0.5, "no scores", transform=ax.transAxes, ha="center", va="center",
                   fontsize=9, color="#777777")  # fmt: skip
    return [*added, note]


def _points(ax: Any, pts: list[tuple[Any, ...]], marks: set[str]) -> list[Any]:
    """One panel's line and points; adds the marks drawn (for the legend) to ``marks``."""
    from matplotlib import dates as mdates

    xs = [mdates.date2num(p[0]) for p in pts]
    # float(): anything else (a string is a category to matplotlib) would change the units
    # of the shared figure's score axis for every later client.
    ys = [float(p[1]) for p in pts]
    out: list[Any] = ax.plot(xs, ys, color=LINE_COLOR, linewidth=1.8, zorder=3)
    styles = {
        "": {"facecolor": LINE_COLOR, "edgecolor": LINE_COLOR, "linewidth": 1.0},
        "prorated": {"facecolor": "white", "edgecolor": LINE_COLOR, "linewidth": 1.5},
        "crosses_cutoff": {"facecolor": "white", "edgecolor": UNCERTAIN_COLOR, "linewidth": 2.2},
    }
    for mark, style in styles.items():
        chosen = [
            (x, y) for x, y, p in zip(xs, ys, pts, strict=True) if (p[2:] or ("",))[0] == mark
        ]
        if chosen:
            out.append(ax.scatter(*zip(*chosen, strict=True), s=36, zorder=4, **style))
            if mark:
                marks.add(mark)
    return out


def _figure_notes(fig: Any, alert_days: tuple[date, ...], marks: set[str]) -> list[Any]:
    """The alert count above the chart and the legend of the point marks below it."""
    out = []
    if alert_days:
        note = f"{len(alert_days)} day(s) with open safety alerts (dotted)"
        out.append(fig.text(0.84, 0.985, note, ha="right", va="top", fontsize=8,
                            color=ALERT_COLOR))  # fmt: skip
    if marks:
        legend = ["open point: prorated score"]
        if "crosses_cutoff" in marks:
            legend.append("orange rim: prorated, band uncertain")
        out.append(fig.text(0.08, 0.005, ";  ".join(legend), fontsize=7, color="#555555",
                            va="bottom"))  # fmt: skip
    return out


def _png(rgba: Any) -> bytes:
    """PNG of the canvas: RGB, with no text chunk (so the same pixels give the same bytes).

    The figure is opaque, so the alpha channel carries nothing; without it, zlib level 3
    encodes in half the time of the default level 6 with alpha, for a file of about the
    same size.
    """
    from PIL import Image

    image = Image.frombuffer("RGBA", SIZE_PX, rgba, "raw", "RGBA", 0, 1).convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format="png", dpi=(DPI, DPI), compress_level=PNG_LEVEL)
    return buf.getvalue()
