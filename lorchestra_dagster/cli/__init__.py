"""The ``lorchestra`` command.

Each module in this package adds its commands to ``app`` (or a sub-typer) on
import, so command groups are owned by the package they front and need no
central list.
"""

import importlib
import pkgutil

from lorchestra_dagster.cli.app import app

for _mod in pkgutil.iter_modules(__path__, prefix=__name__ + "."):
    if not _mod.name.endswith(".app"):
        importlib.import_module(_mod.name)

__all__ = ["app"]
