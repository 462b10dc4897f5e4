"""lorchestra on Dagster: a local-first data platform for a clinician's practice data."""

__version__ = "0.1.0"
