"""What validation, lineage and skip rules need to know of a registered callable.

The callables register themselves (``callables.register``) above the spec
layer, which must not import them; each registration carries a
``CallableTraits``, and the layers above hand the mapping of names to traits
down (``validate_loaded(callables=...)``). So a callable's special cases (the
stream ``injest`` fetches, the transform ``canonizer`` runs) are facts of its
registration, read here, never branches on its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CallableTraits:
    """The registration facts of one callable (all off by default)."""

    #: Each item the callable returns names its own write target (``{table, rows, ...}``),
    #: so a ``plan.build`` fed by it may leave ``table`` out (the original's per-item mode).
    per_item_targets: bool = False
    #: The output depends on ``CallContext.now`` (a "today" page): a job calling it is
    #: never skipped as unchanged, since a new day is new input even when no row changed.
    clock: bool = False
    #: The callable reads the world outside the warehouse (a vendor, a drop folder): no
    #: table slice tells that its input changed, so its job is never skipped either.
    external: bool = False
    #: The param naming a stream of ``sources.yaml`` the callable fetches (``injest``).
    stream_param: str | None = None
    #: The ``config`` key naming the transform the callable runs (``canonizer``).
    transform_key: str | None = None
    #: Transforms under this id prefix return items that carry their own target.
    per_item_transforms: str | None = None

    def transform_of(self, params: Mapping[str, Any]) -> Any:
        """The transform id ``params`` name (``config.<transform_key>``), or None."""
        config = params.get("config")
        if self.transform_key is None or not isinstance(config, Mapping):
            return None
        return config.get(self.transform_key)

    def items_carry_targets(self, params: Mapping[str, Any]) -> bool:
        """Do the items of a call with these (raw) params name their own write target?"""
        if self.per_item_targets:
            return True
        tid = self.transform_of(params)
        prefix = self.per_item_transforms
        return prefix is not None and isinstance(tid, str) and tid.startswith(prefix)
