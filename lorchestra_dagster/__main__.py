"""``python -m lorchestra_dagster``: the ``lorchestra`` command without the console script.

Background processes the CLI starts (``sandbox up``) use this form, so they run
with the same interpreter whatever the PATH holds.
"""

from lorchestra_dagster.cli import app

app(prog_name="lorchestra")
