"""The storacle service: validates plans and routes each op to its backend.

Each method's params model (``storacle/params.py``) names its backend: ``bq.*``
and ``wal.append`` go to the warehouse, ``sqlite.sync`` to the vault's SQLite,
``file.write`` to the vault's files. Each backend applies its share of
a plan in one transaction. Backends run in a fixed order (warehouse, SQLite,
files); when one fails, its ops roll back and the later backends are not
touched, so a failed plan can be resubmitted as a whole.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pydantic import ValidationError

from lorchestra_dagster.errors import LorchestraError, PermanentError
from lorchestra_dagster.privacy import secure_home
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.backends.base import Op, OpFailure, SideBackend, WarehouseBackend
from lorchestra_dagster.storacle.backends.files import FilesBackend
from lorchestra_dagster.storacle.backends.sqlite import SqliteVaultBackend
from lorchestra_dagster.storacle.method import PlanParams
from lorchestra_dagster.storacle.params import PLAN_PARAMS, describe_invalid
from lorchestra_dagster.storacle.plan import Plan, PlanOp
from lorchestra_dagster.storacle.query import QueryParams

# JSON-RPC codes used in op errors (see rpc.py for the full table).
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # transient storage trouble: retry later
_INTERNAL_CODES = {"warehouse_error", "warehouse_open", "vault_error", "internal"}


def rpc_code(err: LorchestraError) -> int:
    """JSON-RPC code for a classified error."""
    if err.classification == "transient":
        return SERVER_ERROR
    if err.code == "unknown_method":
        return METHOD_NOT_FOUND
    return INTERNAL_ERROR if err.code in _INTERNAL_CODES else INVALID_PARAMS


def make_warehouse(settings: Settings) -> WarehouseBackend:
    """The warehouse backend named by ``settings.backend``."""
    if settings.backend == "duckdb":
        from lorchestra_dagster.storacle.backends.duckdb import DuckDBBackend

        return DuckDBBackend(
            settings.warehouse_path,
            short_lock=settings.duckdb_short_lock,
            lock_timeout_s=settings.duckdb_lock_timeout_s,
            limits=settings.limits,
            temp_dir=settings.home / "tmp" / "duckdb",
        )
    try:
        from lorchestra_dagster.storacle.backends.bigquery_config import BigQueryConfig
    except ImportError as err:
        raise PermanentError(
            f"warehouse backend {settings.backend!r} is not available", code="backend"
        ) from err
    return BigQueryConfig.from_settings(settings).make_backend()


class StoracleService:
    """One per process and home; thread-safe (backends serialise their own writes)."""

    def __init__(
        self,
        settings: Settings,
        *,
        warehouse: WarehouseBackend | None = None,
    ) -> None:
        # Before the first file of the home exists: warehouse, vault and token are private.
        secure_home(settings.home)
        self.settings = settings
        self._warehouse = warehouse
        self._lock = threading.Lock()
        self.sqlite: SideBackend = SqliteVaultBackend(settings.vault_dir)
        self.files: SideBackend = FilesBackend(settings.vault_dir)
        self.started_at = time.time()

    @property
    def warehouse(self) -> WarehouseBackend:
        with self._lock:
            if self._warehouse is None:
                self._warehouse = make_warehouse(self.settings)
            return self._warehouse

    def prepare(self) -> None:
        """Open the warehouse and load its libraries before a run's first job (see
        ``WarehouseBackend.prepare``); idempotent and cheap after the first call."""
        self.warehouse.prepare()

    def close(self) -> None:
        with self._lock:
            if self._warehouse is not None:
                self._warehouse.close()
                self._warehouse = None

    # -- plans -------------------------------------------------------------------------------

    def execute_plan(self, plan: Plan, *, dry_run: bool) -> dict[str, Any]:
        """Apply a plan; returns ``{plan_id, dry_run, results}`` with one entry per op.

        Every op's params are validated here, once, into their method's model; the
        backends are handed those models and never parse.
        """
        results: list[dict[str, Any] | None] = [None] * len(plan.ops)
        ops = self._validate(plan, results)
        if ops is None:
            first = next(i for i, r in enumerate(results) if r is not None)
            self._fill(results, plan.ops, first, "not_applied")
            return self._response(plan, dry_run, results)

        # Each method's model names its backend; they run in this order.
        backends: dict[str, Any] = {
            "warehouse": lambda: self.warehouse,
            "sqlite": lambda: self.sqlite,
            "files": lambda: self.files,
        }
        groups = [
            (get, [i for i, op in enumerate(ops) if op.params.backend == name])
            for name, get in backends.items()
        ]
        raw = plan.ops
        failed: int | None = None
        for get_backend, idx in groups:
            if not idx:
                continue
            if failed is not None:
                break
            try:
                out = get_backend().execute([ops[i] for i in idx], dry_run=dry_run)
            except OpFailure as fail:
                failed = idx[fail.index]
                results[failed] = self._error(raw[failed], fail.cause)
                for i in idx:
                    if i != failed:
                        results[i] = self._skipped(raw[i], raw[failed], "rolled_back")
                continue
            except LorchestraError as err:
                failed = idx[0]
                for i in idx:
                    results[i] = self._error(raw[i], err)
                continue
            for i, res in zip(idx, out, strict=True):
                results[i] = {"id": raw[i].id, "result": res}
        if failed is not None:
            self._fill(results, raw, failed, "not_applied")
        return self._response(plan, dry_run, results)

    def _validate(self, plan: Plan, results: list[dict[str, Any] | None]) -> list[Op] | None:
        """Every op's params as its method's model; None (errors in ``results``) when any
        op is unknown or ill-typed: every bad op is reported, none is applied."""
        ops: list[Op] = []
        for i, op in enumerate(plan.ops):
            err: LorchestraError | None = None
            try:
                ops.append(Op.parse(op.id, op.method, op.params))
            except LorchestraError as exc:
                err = exc
            except ValidationError as exc:
                err = PermanentError(
                    f"invalid params: {describe_invalid(exc)}",
                    code="invalid_params",
                    plan_id=plan.plan_id,
                )
            if err is not None:
                results[i] = self._error(op, err)
        return ops if len(ops) == len(plan.ops) else None

    @staticmethod
    def _target(op: PlanOp) -> dict[str, Any]:
        # The raw params: an op that failed validation still names its target.
        return PLAN_PARAMS.get(op.method, PlanParams).target(op.params)

    def _error(self, op: PlanOp, err: LorchestraError) -> dict[str, Any]:
        data = {**err.to_dict(), "op_id": op.id, "method": op.method, **self._target(op)}
        return {
            "id": op.id,
            "error": {"code": rpc_code(err), "message": err.message, "data": data},
        }

    def _skipped(self, op: PlanOp, cause: PlanOp, reason: str) -> dict[str, Any]:
        what = "rolled back" if reason == "rolled_back" else "not applied"
        err = PermanentError(f"{what}: op {cause.id} ({cause.method}) of the plan failed")
        out = self._error(op, err)
        out["error"]["data"]["reason"] = reason
        return out

    def _fill(
        self,
        results: list[dict[str, Any] | None],
        ops: list[PlanOp],
        cause: int,
        reason: str,
    ) -> None:
        for i, res in enumerate(results):
            if res is None:
                results[i] = self._skipped(ops[i], ops[cause], reason)

    @staticmethod
    def _response(
        plan: Plan, dry_run: bool, results: list[dict[str, Any] | None]
    ) -> dict[str, Any]:
        return {"plan_id": plan.plan_id, "dry_run": dry_run, "results": results}

    # -- reads -------------------------------------------------------------------------------

    def query(self, params: QueryParams) -> list[dict[str, Any]]:
        """Rows of a read validated at the boundary (``rpc``), handed on as the model."""
        return self.warehouse.query(params)

    def sql(self, select: str) -> list[dict[str, Any]]:
        return self.warehouse.sql(select)

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "backend": self.settings.backend,
            "home": str(self.settings.home),
            "uptime_s": round(time.time() - self.started_at, 3),
        }


_services: dict[tuple[str, str], StoracleService] = {}
_services_lock = threading.Lock()


def get_service(settings: Settings) -> StoracleService:
    """The process-wide service for a home (one warehouse connection per process and home)."""
    key = (str(settings.home), settings.backend)
    with _services_lock:
        service = _services.get(key)
        if service is None:
            service = _services[key] = StoracleService(settings)
        return service


def close_services() -> None:
    """Close every cached service (tests, shutdown)."""
    with _services_lock:
        for service in _services.values():
            service.close()
        _services.clear()
