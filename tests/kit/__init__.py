"""The shared test kit: repository paths, free loopback ports and seed jobs, in one place.

Test folders have no ``__init__``; ``tests/`` is on ``sys.path`` (its conftest
sits there), so any test imports ``from kit import REPO, JOBS, free_port``.
"""

from __future__ import annotations

from pathlib import Path

from lorchestra_dagster.ports import free_port

#: The repository checkout the tests run from.
REPO = Path(__file__).resolve().parents[2]
#: The shipped catalog.
JOBS = REPO / "jobs"


def upsert_job(
    job_id: str, dataset: str, table: str, items: str = "@payload.rows", key: str = "idem_key"
) -> str:
    """YAML of the smallest writing job: ``items`` upserted into ``dataset.table`` by ``key``.

    Tests seed the warehouse through a real job (plan.build, then storacle.submit) rather
    than behind the engine's back, so what they read was written the way jobs write.
    """
    return (
        f"job_id: {job_id}\nversion: '2.0'\nsteps:\n"
        "- step_id: persist\n  op: plan.build\n  params:\n"
        f"    method: bq.upsert\n    dataset: {dataset}\n    table: {table}\n"
        f"    key_columns: [{key}]\n    items: '{items}'\n"
        "- step_id: write\n  op: storacle.submit\n  params: {plan: '@run.persist.plan'}\n"
    )


__all__ = ["JOBS", "REPO", "free_port", "upsert_job"]
