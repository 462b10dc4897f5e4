"""Read form bindings and instruments from a catalog into sandbox form specs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lorchestra_dagster.sources.sandbox.forms import FormSpec


def specs_from_catalog(catalog_dir: Path, form_ids: Iterable[str]) -> dict[str, FormSpec]:
    """Form specs for ``form_ids`` found in ``catalog_dir/bindings``; missing ones are left out."""
    return {}
