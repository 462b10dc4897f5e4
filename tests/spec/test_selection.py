"""``--select`` resolution: names, globs, stages, upstream and downstream."""

from __future__ import annotations

import pytest

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.spec.selection import resolve_selection

pytestmark = pytest.mark.unit

STAGES = {
    "ingest_a": "ingest",
    "ingest_b": "ingest",
    "canonize_a": "canonize",
    "canonize_b": "canonize",
    "view_x": "views",
    "sync_x": "project",
}
DEPS = {
    "canonize_a": ["ingest_a"],
    "canonize_b": ["ingest_b"],
    "view_x": ["canonize_a"],
    "sync_x": ["view_x"],
}


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("canonize_a", ["canonize_a"]),
        ("ingest_*", ["ingest_a", "ingest_b"]),
        ("stage:canonize", ["canonize_a", "canonize_b"]),
        ("+view_x", ["ingest_a", "canonize_a", "view_x"]),
        ("canonize_a+", ["canonize_a", "view_x", "sync_x"]),
        ("+canonize_a+", ["ingest_a", "canonize_a", "view_x", "sync_x"]),
        ("sync_x, canonize_b", ["canonize_b", "sync_x"]),  # stage order, then id
        ("stage:views+ ingest_b", ["ingest_b", "view_x", "sync_x"]),
    ],
)
def test_selection(expr, want):
    assert resolve_selection(expr, STAGES, DEPS) == want


def test_several_options_add_up():
    assert resolve_selection(["view_x", "ingest_b"], STAGES, DEPS) == ["ingest_b", "view_x"]


@pytest.mark.parametrize(
    ("expr", "hint"),
    [
        ("canonize_c", "did you mean canonize_b, canonize_a"),
        ("stage:canon", "did you mean canonize"),
    ],
)
def test_a_token_that_selects_nothing_names_near_ones(expr, hint):
    with pytest.raises(PermanentError, match=hint):
        resolve_selection(expr, STAGES, DEPS)


def test_empty_selection_is_an_error():
    with pytest.raises(PermanentError, match="empty"):
        resolve_selection(" , ", STAGES, DEPS)
