"""Clinical instrument scoring: specs, bindings and a pure scorer.

Everything here is a pure function of spec data and answers, so the CLI, the
``finalform`` callable and tests share one implementation.
"""

from lorchestra_dagster.instruments.models import Binding, Instrument, Scale
from lorchestra_dagster.instruments.registry import (
    get_instrument,
    load_bindings,
    load_instruments,
)

__all__ = ["Binding", "Instrument", "Scale", "get_instrument", "load_bindings", "load_instruments"]
