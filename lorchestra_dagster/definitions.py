"""The lorchestra Dagster code location: ``dagster dev -m lorchestra_dagster.definitions``.

Built from the catalog at ``LORCHESTRA_JOBS_DIR`` (default ``./jobs``) against
``LORCHESTRA_HOME`` (default ``./.lorchestra``). Every process of the
location (webserver, daemon, run workers, forkserver) may touch the DuckDB
warehouse, so the storacle backend opens the file per request
(``LORCHESTRA_DUCKDB_SHORT_LOCK=1``) unless the environment says otherwise.
"""

from __future__ import annotations

import os

os.environ.setdefault("LORCHESTRA_DUCKDB_SHORT_LOCK", "1")

from lorchestra_dagster.defs.build import build_defs
from lorchestra_dagster.privacy import secure_home
from lorchestra_dagster.settings import Settings

# The code server and run workers create files in the home too (see privacy.py).
secure_home(Settings.from_env().home)
defs = build_defs()
