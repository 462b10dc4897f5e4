"""Clinical safety alerts: the lifecycle of every safety flag (docs/clinical-safety.md).

Formation raises flags (``derived.safety_flags``); :func:`sync_alerts` turns
each flag into an alert with a lifecycle (``derived.alerts``, every change in
``derived.alert_history``), records it in ``ops.events`` and notifies the
clinician of new critical ones. The Dagster sensor, the end of ``lorchestra
pipeline run`` and the ``lorchestra alerts`` commands all call this one module.
"""

from lorchestra_dagster.alerts.store import (
    AlertError,
    SyncReport,
    list_alerts,
    sync_alerts,
    transition,
)

__all__ = ["AlertError", "SyncReport", "list_alerts", "sync_alerts", "transition"]
