"""The keyed upsert as sqlglot ASTs: one definition, rendered for DuckDB and BigQuery.

``bq.upsert`` means the same on every warehouse: rows are matched on the key
columns; a matched row is updated only when a column other than the keys, the
``volatile_columns`` and the ``skip_update_columns`` differs (so a rerun of the
same rows updates nothing and ``first_seen``-style columns keep their first
value); an unmatched row is inserted. That rule lives here once, as a ``MERGE``
and the read-only ``SELECT`` that counts what it would do. Each backend gives
only what differs between them: the staged source (an Arrow scan cast to the
table's types on DuckDB, a load-job staging table with ``PARSE_JSON`` on
BigQuery) and how JSON compares (BigQuery's JSON has no equality, so it is
compared as canonical text). No string from a plan is spliced into the SQL:
names pass ``sql.ident``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlglot import exp

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.storacle.sql import ident

TGT = "t"
SRC = "s"
HIT = "__lorch_hit"

Compare = Callable[[exp.Expr, exp.Expr, str], exp.Expr]


def distinct(target: exp.Expr, source: exp.Expr, _column: str) -> exp.Expr:
    """``target IS DISTINCT FROM source`` (NULL-safe)."""
    return exp.NullSafeNEQ(this=target, expression=source)


@dataclass(frozen=True)
class Upsert:
    """A keyed upsert of a staged source into a target, independent of the dialect.

    Args:
        target: the target table node (quoted, qualified as the backend needs).
        source: a query yielding the batch with the target's types, one row per key.
        columns: the batch's columns, in order.
        key_columns: columns that identify a row.
        skip_update_columns: written on insert only.
        volatile_columns: written, but never a reason to update.
        compare: builds the "differs" test of one column (``distinct`` by default).
        missing_in_target: columns the target does not have yet (dry-run counts: they
            compare as NULL on the target side, as right after they are added).
    """

    target: exp.Table
    source: exp.Query
    columns: Sequence[str]
    key_columns: Sequence[str]
    skip_update_columns: Sequence[str] = ()
    volatile_columns: Sequence[str] = ()
    compare: Compare = distinct
    missing_in_target: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in (*self.columns, *self.key_columns):
            ident(name, "upsert column")
        for k in self.key_columns:
            if k not in self.columns:
                raise PermanentError(f"key column {k!r} is missing from the rows", code="bad_key")

    @property
    def updatable(self) -> list[str]:
        quiet = set(self.key_columns) | set(self.skip_update_columns)
        return [c for c in self.columns if c not in quiet]

    @property
    def compared(self) -> list[str]:
        return [c for c in self.updatable if c not in set(self.volatile_columns)]

    def _on(self) -> exp.Expr:
        return exp.and_(
            *[exp.EQ(this=_col(k, TGT), expression=_col(k, SRC)) for k in self.key_columns]
        )

    def changed(self) -> exp.Expr:
        """True when a matched row differs in a compared column (FALSE when none is)."""
        missing = set(self.missing_in_target)
        tests = [
            exp.Not(this=exp.Is(this=_col(c, SRC), expression=exp.Null()))
            if c in missing
            else self.compare(_col(c, TGT), _col(c, SRC), c)
            for c in self.compared
        ]
        return exp.or_(*tests) if tests else exp.false()

    def merge(self) -> exp.Merge:
        """``MERGE INTO target USING source ON keys``: update changed rows, insert new ones."""
        whens = []
        if self.compared and self.updatable:
            sets = [exp.EQ(this=_col(c), expression=_col(c, SRC)) for c in self.updatable]
            whens.append(
                exp.When(
                    matched=True,
                    condition=exp.paren(self.changed()),
                    then=exp.Update(expressions=sets),
                )
            )
        whens.append(
            exp.When(
                matched=False,
                then=exp.Insert(
                    this=exp.Tuple(expressions=[_col(c) for c in self.columns]),
                    expression=exp.Tuple(expressions=[_col(c, SRC) for c in self.columns]),
                ),
            )
        )
        return exp.Merge(
            this=self.target.copy().as_(TGT),
            using=exp.Subquery(
                this=self.source.copy(), alias=exp.TableAlias(this=exp.to_identifier(SRC))
            ),
            on=self._on(),
            whens=exp.Whens(expressions=whens),
        )

    def counts(self) -> exp.Select:
        """Read-only ``SELECT inserted, updated``: what ``merge`` would do to this batch."""
        missing = set(self.missing_in_target)
        kept = [c for c in (*self.key_columns, *self.compared) if c not in missing]
        from_target = exp.select(
            *[_col(c) for c in dict.fromkeys(kept)], exp.true().as_(HIT)
        ).from_(self.target.copy())
        hit = _col(HIT, TGT)
        absent = exp.Is(this=hit, expression=exp.Null())
        present = exp.Not(this=absent.copy())
        return (
            exp.select(
                exp.CountIf(this=absent).as_("inserted"),
                exp.CountIf(this=exp.and_(present, exp.paren(self.changed()))).as_("updated"),
            )
            .from_(
                exp.Subquery(
                    this=self.source.copy(), alias=exp.TableAlias(this=exp.to_identifier(SRC))
                )
            )
            .join(
                exp.Subquery(this=from_target, alias=exp.TableAlias(this=exp.to_identifier(TGT))),
                on=self._on(),
                join_type="left",
            )
        )


def _id(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _col(name: str, table: str | None = None) -> exp.Column:
    """A quoted column, qualified by one of the fixed aliases (``t``, ``s``) when given."""
    return exp.Column(this=_id(name), table=exp.to_identifier(table) if table else None)
