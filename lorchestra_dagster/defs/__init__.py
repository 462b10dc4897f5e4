"""The Dagster face of lorchestra: assets, IO managers, jobs, schedule, sensors, checks.

``lorchestra_dagster.definitions:defs`` is the code location; ``build_defs``
builds it from any catalog; ``run_daily_all`` runs the daily pipeline through
Dagster with the instance in ``$LORCHESTRA_HOME/dagster``.
"""

from lorchestra_dagster.defs.build import build_defs
from lorchestra_dagster.defs.run import ensure_instance, run_daily_all

__all__ = ["build_defs", "ensure_instance", "run_daily_all"]
