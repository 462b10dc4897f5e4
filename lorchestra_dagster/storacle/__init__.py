"""Storacle: the data plane. Plans in, JSON-RPC 2.0 across, backends underneath.

Public surface: the plan model (``make_plan``, ``Plan``, ``PLAN_METHODS``) and the
client (``make_client``, ``StoracleClient``). Everything else is internal.
"""

from typing import Any

from lorchestra_dagster.storacle.plan import PLAN_METHODS, Plan, PlanMeta, PlanOp, make_plan

__all__ = [
    "PLAN_METHODS",
    "Plan",
    "PlanMeta",
    "PlanOp",
    "make_plan",
    "make_client",
    "StoracleClient",
]


def __getattr__(name: str) -> Any:  # lazy: the plan model must not pull in httpx/duckdb
    if name in ("make_client", "StoracleClient"):
        from lorchestra_dagster.storacle import client

        return getattr(client, name)
    raise AttributeError(name)
