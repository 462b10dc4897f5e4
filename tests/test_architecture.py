"""The import graph keeps the layers of DESIGN.md: no cycles, no upward knowledge.

grimp parses every module of the package (imports inside functions included),
so a lazy import that closes a cycle or reaches Dagster from the data plane
fails here, with the chain that does it.
"""

from __future__ import annotations

import graphlib

import grimp
import pytest

pytestmark = pytest.mark.unit

PACKAGE = "lorchestra_dagster"
DAGSTER = ("dagster", "dagster_gcp", "dagster_webserver", "dagster_postgres", "dagster_graphql")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, include_external_packages=True, cache_dir=None)


def _ours(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    """Module -> the package's modules it imports directly (typing-only imports left out:
    they never run, so they cannot close a cycle at import time)."""
    typed = grimp.build_graph(PACKAGE, exclude_type_checking_imports=True, cache_dir=None)
    return {
        m: {i for i in typed.find_modules_directly_imported_by(m) if i.startswith(PACKAGE)}
        for m in typed.modules
        if m.startswith(PACKAGE)
    }


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    edges = _ours(graph)
    # A package imports its own modules through __init__ re-exports; a module importing
    # its parent package is the same file set, not a cycle between two roles.
    for module, imported in edges.items():
        imported -= {p for p in imported if module.startswith(p + ".")}
    try:
        tuple(graphlib.TopologicalSorter(edges).static_order())
    except graphlib.CycleError as err:
        pytest.fail(f"import cycle: {' -> '.join(err.args[1])}")


def test_a_cycle_is_found() -> None:
    """The check above can fail: graphlib reports the modules of a two-module cycle."""
    with pytest.raises(graphlib.CycleError) as info:
        tuple(graphlib.TopologicalSorter({"a": {"b"}, "b": {"a"}}).static_order())
    assert set(info.value.args[1]) == {"a", "b"}


# Layer -> packages of ours it may import (besides itself). DESIGN.md section 1.
# spec sits on storacle (its query model and method registry), so it may reach what
# storacle reaches.
_STORACLE = {"errors", "ports", "privacy", "settings", "timestamps"}
ALLOWED = {
    "storacle": _STORACLE,
    "spec": {"errors", "naming", "storacle", *_STORACLE},
    "instruments": {"errors"},
    "errors": set(),
    "naming": set(),
    "settings": {"errors"},
    "timestamps": {"errors"},
    "ports": set(),
}


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_lower_layers_know_nothing_above_them(graph: grimp.ImportGraph, layer: str) -> None:
    importer = f"{PACKAGE}.{layer}"
    allowed = {importer, *(f"{PACKAGE}.{name}" for name in ALLOWED[layer])}
    found = []
    for module in sorted(graph.modules):
        top = ".".join(module.split(".")[:2])
        if not module.startswith(PACKAGE) or top in allowed or module == PACKAGE:
            continue
        chain = graph.find_shortest_chain(importer=importer, imported=module, as_packages=True)
        if chain is not None:
            found.append(" -> ".join(chain))
    assert not found, f"{layer} reaches upward:\n" + "\n".join(found[:5])


@pytest.mark.parametrize("layer", ["storacle", "spec", "engine", "callables", "instruments"])
def test_only_the_code_location_imports_dagster(graph: grimp.ImportGraph, layer: str) -> None:
    importer = f"{PACKAGE}.{layer}"
    chains = [
        " -> ".join(chain)
        for name in DAGSTER
        if name in graph.modules
        and (chain := graph.find_shortest_chain(importer, name, as_packages=True)) is not None
    ]
    assert not chains, f"{layer} imports Dagster:\n" + "\n".join(chains)


_DECLARED_AFTER = """
import importlib, sys
from lorchestra_dagster.storacle import tables
import lorchestra_dagster.storacle.service, lorchestra_dagster.storacle.backends.duckdb
before = sorted(k for k in tables.DECLARED if k[0] == "ops")
importlib.import_module(sys.argv[1])
print(before, sorted(k for k in tables.DECLARED if k[0] == "ops"))
"""


@pytest.mark.parametrize(
    "entry",
    [
        "lorchestra_dagster.cli.app",
        "lorchestra_dagster.engine.services",
        "lorchestra_dagster.alerts.events",
    ],
)
def test_storacle_owns_no_run_table_and_every_entry_declares_them(entry: str) -> None:
    """The run tables are the engine's: storacle alone declares none of ``ops.*``; each
    way into storacle from above (CLI and ``storacle serve``, an engine run, the alert
    sync) hands them over before a backend can create one."""
    import subprocess
    import sys

    from lorchestra_dagster.engine.tables import RUN_TABLES

    out = subprocess.run(
        [sys.executable, "-c", _DECLARED_AFTER, entry], capture_output=True, text=True, check=True
    ).stdout.strip()
    ops = sorted((t.dataset, t.table) for t in RUN_TABLES)
    assert out == f"[] {ops}"


_ALERTS_DECLARED_AFTER = """
import importlib, sys
from lorchestra_dagster.storacle import tables
import lorchestra_dagster.storacle.service, lorchestra_dagster.storacle.backends.duckdb
import lorchestra_dagster.engine.services
alerts = lambda: sorted(k for k in tables.DECLARED if k[1].startswith("alert"))
before = alerts()
importlib.import_module(sys.argv[1])
print(before, alerts())
"""


@pytest.mark.parametrize(
    "entry", ["lorchestra_dagster.cli.app", "lorchestra_dagster.alerts", "lorchestra_dagster.defs"]
)
def test_the_alert_tables_are_the_alerts_own_and_every_entry_declares_them(entry: str) -> None:
    """Neither storacle nor the engine declares ``derived.alerts``/``alert_history``: the
    alert sync owns them; the CLI (``storacle serve``), the alerts package and the code
    location (whose runs create ``canonical.proj_alerts`` over them) hand them over."""
    import subprocess
    import sys

    from lorchestra_dagster.alerts.store import ALERT_TABLES

    out = subprocess.run(
        [sys.executable, "-c", _ALERTS_DECLARED_AFTER, entry],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == f"[] {sorted((t.dataset, t.table) for t in ALERT_TABLES)}"
