"""Statements sharing one ``memory_limit``: an out-of-memory a neighbour caused is rerun alone.

DuckDB's ``memory_limit`` bounds one database instance, and every thread of the
process uses the same instance. Most of what a query holds cannot spill: each JSON
function of a view keeps its parse arena (tens of MB for a view such as
``proj_form_responses``, whatever the practice's size), so two jobs of a stage that
read JSON-heavy views at the same moment can exhaust a limit that either fits in
comfortably. Such a failure says nothing about the query, and failing the run for it
would make a daily run fail at random.

So every statement takes a ``shared`` turn; a statement that ran out of memory while
another one overlapped it is run once more in an ``alone`` turn (new statements wait,
running ones finish first). One that runs out alone is rerun, still alone, under the
backend's burst limit (``LORCHESTRA_DUCKDB_BURST_MEMORY_LIMIT``): a page of a view that
outgrew the steady budget at a large practice gets what it needs for that statement,
while every other statement keeps the small one. One that runs out of the burst limit
too is out of memory for real, and its error stands (permanent: it fails again).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TypeVar

from lorchestra_dagster.errors import LorchestraError
from lorchestra_dagster.storacle.backends.base import OpFailure

T = TypeVar("T")

#: The code ``duckdb._classify`` gives an out-of-memory error.
OUT_OF_MEMORY = "resource_exhausted"


@dataclass
class Turn:
    """One statement's turn; ``crowded`` once another statement ran beside it."""

    crowded: bool = False


class MemoryGate:
    """Shared turns for statements, an alone turn to rerun one that a neighbour starved."""

    def __init__(self, burst: Callable[[], AbstractContextManager[None]] | None = None) -> None:
        #: A context in which the backend's limit is the burst one (None: no burst rerun).
        self._burst = burst
        self._cond = threading.Condition()
        self._running: list[Turn] = []
        self._alone = False
        #: Statements rerun alone, and of those under the burst limit, since the gate was made.
        self.reruns = 0
        self.bursts = 0

    @contextmanager
    def shared(self) -> Iterator[Turn]:
        turn = Turn()
        with self._cond:
            while self._alone:
                self._cond.wait()
            if self._running:
                turn.crowded = True
                for other in self._running:
                    other.crowded = True
            self._running.append(turn)
        try:
            yield turn
        finally:
            with self._cond:
                self._running.remove(turn)
                self._cond.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        with self._cond:
            while self._alone:
                self._cond.wait()
            self._alone = True  # no new statement starts from here
            while self._running:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._alone = False
                self._cond.notify_all()

    def run(self, statement: Callable[[], T]) -> T:
        """``statement()`` in a shared turn; out of memory, it is rerun alone: first under the
        steady limit if another statement overlapped it, then under the gate's burst
        context, when it has one.

        The statement must be whole on its own (a read, or a transaction it rolls back
        on failure), since it may run more than once. It must not call the gate again.
        """
        with self.shared() as turn:
            try:
                return statement()
            except (LorchestraError, OpFailure) as err:
                if not _out_of_memory(err):
                    raise
                crowded, failure = turn.crowded, err
        burst = self._burst
        if not crowded and burst is None:
            raise failure
        # Out of the shared turn first: the alone turn waits for every shared one to end.
        with self.alone():
            self.reruns += 1  # alone: no other statement touches the counters now
            if crowded:
                try:
                    return statement()
                except (LorchestraError, OpFailure) as err:
                    if not _out_of_memory(err) or burst is None:
                        raise
            if burst is None:  # (a crowded statement without a burst raised above)
                raise failure
            self.bursts += 1
            with burst():
                return statement()


def _out_of_memory(err: LorchestraError | OpFailure) -> bool:
    cause = err.cause if isinstance(err, OpFailure) else err
    return getattr(cause, "code", None) == OUT_OF_MEMORY
