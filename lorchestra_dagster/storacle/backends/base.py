"""The backend interfaces every storage adapter implements.

Differences between DuckDB and BigQuery live in the adapters; the service and
the conformance tests only see this protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from lorchestra_dagster.errors import LorchestraError
from lorchestra_dagster.storacle.method import PlanParams
from lorchestra_dagster.storacle.params import parse_params
from lorchestra_dagster.storacle.query import QueryParams

WRITE_RESULT_KEYS = ("method", "dataset", "table", "rows", "inserted", "updated", "unchanged")


def write_result(method: str, dataset: str | None, table: str | None, rows: int) -> dict[str, Any]:
    """A zeroed write result; adapters fill the counts."""
    return {
        "method": method,
        "dataset": dataset,
        "table": table,
        "rows": rows,
        "inserted": 0,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
    }


@dataclass(frozen=True, slots=True)
class Op:
    """One op of a plan as a backend receives it: params already validated into their model.

    The service parses every op of a plan once, before any backend is touched; a backend
    dispatches on the type of ``params`` (the registry's class) and never parses again.
    """

    id: str
    params: PlanParams

    @classmethod
    def parse(cls, op_id: str, method: str, params: Any) -> Op:
        """Validate ``params`` into ``method``'s model (see ``params.parse_params``)."""
        return cls(op_id, parse_params(method, params))

    @property
    def method(self) -> str:
        return self.params.method

    @property
    def target(self) -> dict[str, Any]:
        """``{dataset, table}`` (or ``path``) the op writes to or reads."""
        return type(self.params).target(vars(self.params))

    @property
    def table_name(self) -> str | None:
        """``dataset.table`` the op targets (None for a file op): what its errors name."""
        target = self.target
        if not target.get("table"):
            return None
        return ".".join(str(p) for p in (target.get("dataset"), target["table"]) if p)


class OpFailure(Exception):
    """Raised by ``execute`` when op number ``index`` failed; nothing of the batch was kept.

    ``cause`` is the classified error (permanent/transient) that stopped the batch.
    """

    def __init__(self, index: int, cause: LorchestraError) -> None:
        super().__init__(str(cause))
        self.index = index
        self.cause = cause


@runtime_checkable
class WarehouseBackend(Protocol):
    """A warehouse (``bq.*`` and ``wal.append``); datasets raw, canonical, derived, wal, ops."""

    name: str

    def execute(self, ops: Sequence[Op], *, dry_run: bool) -> list[dict[str, Any]]:
        """Apply validated ops in one transaction; results in op order.

        Raises:
            OpFailure: an op failed; the whole batch was rolled back.
        """
        ...

    def query(self, params: QueryParams) -> list[dict[str, Any]]:
        """Rows of one validated ``storacle.query``, JSON-safe."""
        ...

    def sql(self, select: str) -> list[dict[str, Any]]:
        """Rows of one read-only SELECT/WITH query, JSON-safe."""
        ...

    def prepare(self) -> None:
        """Load what the first read or write would load (libraries, connection), so that
        cost lands at the start of a run, not inside its first job."""
        ...

    def close(self) -> None:
        """Release connections (idempotent)."""
        ...


@runtime_checkable
class SideBackend(Protocol):
    """The vault's SQLite and files backends: same atomic ``execute`` contract."""

    name: str

    def execute(self, ops: Sequence[Op], *, dry_run: bool) -> list[dict[str, Any]]: ...
