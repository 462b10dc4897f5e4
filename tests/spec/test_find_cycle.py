"""The one cycle check of the spec layer (graphlib underneath): lineage and pipelines."""

from __future__ import annotations

import pytest

from lorchestra_dagster.spec.lineage import find_cycle

pytestmark = pytest.mark.unit


def test_a_cycle_follows_the_arrows_from_its_smallest_node() -> None:
    assert find_cycle({"c": ["a"], "a": ["b"], "b": ["c"], "d": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": ["x"]}) == ["x", "x"]


def test_an_acyclic_graph_has_none() -> None:
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": [], "d": ["zzz"]}) is None
