"""Registered callables. Importing this package registers every callable module.

Every module in this package (and subpackage) registers itself on import; we
import them all here so that a new callable needs no edit to a central list.
"""

import importlib
import pkgutil

from lorchestra_dagster.callables.base import (
    CallContext,
    callable_names,
    callable_traits,
    collect,
    get_callable,
    is_paged,
    paged,
    register,
    result,
    stream_steps,
    streams_of,
    traits_of,
)

for _mod in pkgutil.iter_modules(__path__, prefix=__name__ + "."):
    if not _mod.name.endswith(".base"):
        importlib.import_module(_mod.name)

__all__ = [
    "CallContext",
    "callable_names",
    "callable_traits",
    "collect",
    "get_callable",
    "is_paged",
    "paged",
    "register",
    "result",
    "stream_steps",
    "streams_of",
    "traits_of",
]
