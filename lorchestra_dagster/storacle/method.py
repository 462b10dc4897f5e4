"""The base of every plan method's params model: the class *is* the method's registration.

A subclass that sets ``method`` registers itself in ``PlanParams.registry``, so
adding a plan method is one class (in ``storacle/params.py``, or ``query.py``
for the read). What the rest of the package knows about a method (which
backend applies it, whether it carries rows, which target it names, whether
``plan.build`` may take its target from each item) is read from these class
attributes, never from a list of method names kept elsewhere. ``params.py``
exposes the finished registry as ``PLAN_PARAMS`` and the sets derived from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

Backend = Literal["warehouse", "sqlite", "files"]


class PlanParams(BaseModel):
    """Params of one plan method; subclasses set ``method`` and the traits below."""

    model_config = ConfigDict(extra="forbid")

    #: Every registered method's params model, by method name (filled by subclassing).
    registry: ClassVar[dict[str, type[PlanParams]]] = {}
    #: The JSON-RPC method name inside a plan (``bq.upsert``); unset on the base.
    method: ClassVar[str]
    #: Which backend applies the op (one transaction per backend and plan).
    backend: ClassVar[Backend] = "warehouse"
    #: ``plan.build`` may take the target from each item (``{table, rows, ...}``)
    #: when the step names no ``table``.
    per_item: ClassVar[bool] = False
    #: One op must see every row of the step at once (it deletes rows missing from
    #: its input), so ``plan.build`` never splits it into batches.
    whole_input: ClassVar[bool] = False
    #: A read inside a plan (its result holds ``items``; it writes nothing).
    reads: ClassVar[bool] = False
    #: The dataset every op of the method writes to, whatever its params say.
    fixed_dataset: ClassVar[str | None] = None
    #: ``plan.build``'s items are SQL statements (``{sql, dialect}``), not rows: lineage
    #: reads the tables from the SQL, validation checks it, and a job writing through
    #: it derives its tables from others (a view).
    sql_items: ClassVar[bool] = False

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        method = cls.__dict__.get("method")
        if isinstance(method, str):
            if method in PlanParams.registry:
                raise TypeError(f"plan method {method!r} is registered twice")
            PlanParams.registry[method] = cls

    @classmethod
    def carries_rows(cls) -> bool:
        """True for methods whose ops carry ``rows`` (plan.build shapes them)."""
        return "rows" in cls.model_fields

    @classmethod
    def required_params(cls) -> tuple[str, ...]:
        """Params ``plan.build`` must be given for this method, beyond ``items``.

        The required fields of the model but ``rows`` (the items become the rows);
        methods without rows take everything from their items.
        """
        if not cls.carries_rows():
            return ()
        return tuple(n for n, f in cls.model_fields.items() if f.is_required() and n != "rows")

    @classmethod
    def target(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        """``{dataset, table}`` an op with these raw params names (for errors and lineage).

        Raw params, not a validated model: an op that failed validation still
        names its target in the error.
        """
        return {"dataset": cls.fixed_dataset or params.get("dataset"), "table": params.get("table")}
