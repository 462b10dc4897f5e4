"""The Dagster face of lorchestra: the catalog op and its assets, jobs, schedule, sensors.

``lorchestra_dagster.definitions:defs`` is the code location; ``build_defs``
builds it from any catalog. Runs from Python and the CLI start through
``lorchestra_dagster.launch``.
"""

from lorchestra_dagster.defs.build import build_defs

__all__ = ["build_defs"]
