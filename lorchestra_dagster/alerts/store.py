"""Alerts in the warehouse: sync from the flags, list, acknowledge, resolve.

One alert per safety flag (``derived.safety_flags`` row), ``alert_id`` the
first 12 hex digits of sha256 of its ``flag_id`` (short enough to type, and
``canonical.proj_alerts`` computes the same in SQL). States::

    open --ack--> acknowledged --resolve--> resolved
      \\____________resolve_______________/

A flag whose source changed (a re-scored submission no longer raises it, a
quarantined submission now scores) never closes or removes its alert: the
alert is marked ``source_changed`` and keeps its state for a person to
review; a resolved alert whose flag is raised again reopens. Every change is
a ``derived.alert_history`` row (who, when, what, note).

:func:`sync_alerts` reads the flags by keyset on ``(processed_at, flag_id)``
from a cursor kept in ``ops.cursors``, re-reading a short lookback window so
a batch committed late is not skipped (processing is idempotent), in pages of
any size: the rows of one written page share one ``processed_at``, which
blinded the first version of the sensor past 1,000 rows of one stamp.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lorchestra_dagster.alerts.events import event_row, events_op
from lorchestra_dagster.alerts.notify import notice, notifier_from_env
from lorchestra_dagster.errors import LorchestraError, PermanentError
from lorchestra_dagster.storacle.params import UpsertParams
from lorchestra_dagster.storacle.plan import make_plan
from lorchestra_dagster.storacle.tables import (
    BOOLEAN,
    TIMESTAMP,
    VARCHAR,
    TableSchema,
    declare,
    table,
)
from lorchestra_dagster.timestamps import parse_utc

PAGE = 1000
LOOKBACK = timedelta(minutes=10)
CURSOR = "alert_sync"
EVENT_KIND = "clinical_safety_alert"
STATES = ("open", "acknowledged", "resolved")
_FLAG_FIELDS = ("code", "severity", "subject_id", "instrument_code", "occurred_at")

_V, _TS, _B = VARCHAR, TIMESTAMP, BOOLEAN
#: The alert sync's tables, handed to storacle as the engine hands its run tables: the
#: alerts own them, storacle knows nothing of alerts. Declared on import, so every way
#: in that writes them or creates a view over them (the CLI and ``storacle serve``, the
#: code location, this module) gives them typed columns, and a view over them binds
#: before any sync ran.
ALERT_TABLES: tuple[TableSchema, ...] = (
    table(
        # the lifecycle of each flag (docs/clinical-safety.md); alert_id = flag_id
        "derived", "alerts", ("alert_id",),
        alert_id=_V, flag_id=_V, code=_V, severity=_V, subject_id=_V, instrument_code=_V,
        occurred_at=_TS, status=_V, source_changed=_B, opened_at=_TS,
        acknowledged_by=_V, acknowledged_at=_TS, acknowledge_note=_V, resolved_by=_V,
        resolved_at=_TS, resolve_note=_V, notified_at=_TS, updated_at=_TS,
    ),
    table(
        # every change of an alert, append-only: who did what when (and their note)
        "derived", "alert_history", ("history_id",),
        history_id=_V, alert_id=_V, action=_V, actor=_V, note=_V, at=_TS,
    ),
)  # fmt: skip
declare(*ALERT_TABLES)


class AlertError(PermanentError):
    """An alert command that cannot apply (unknown id, a transition the state forbids)."""


def alert_id_of(flag_id: str) -> str:
    """The alert id of a flag: 12 hex digits of sha256 (no source id exposed)."""
    return hashlib.sha256(flag_id.encode("utf-8")).hexdigest()[:12]


_LAST = [datetime.min.replace(tzinfo=UTC)]


def _now() -> str:
    """Strictly increasing in this process, so history rows written together keep their order."""
    now = max(datetime.now(tz=UTC), _LAST[0] + timedelta(microseconds=1))
    _LAST[0] = now
    return now.isoformat()


def _history(
    alert_id: str, action: str, actor: str, note: str | None, at: str | None = None
) -> dict[str, Any]:
    at = _now() if at is None else at
    hid = hashlib.sha256(f"{alert_id}|{action}|{at}".encode()).hexdigest()[:32]
    return {"history_id": hid, "alert_id": alert_id, "action": action, "actor": actor,
            "note": note, "at": at}  # fmt: skip


@dataclass
class SyncReport:
    """What one sync did: counts and alert ids only."""

    flags_read: int = 0
    opened: list[dict[str, Any]] = field(default_factory=list)
    changed: int = 0
    notified: int = 0
    notify_errors: list[str] = field(default_factory=list)
    open_critical: int = 0
    open_total: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "flags_read": self.flags_read,
            "opened": len(self.opened),
            "changed": self.changed,
            "notified": self.notified,
            "notify_errors": len(self.notify_errors),
            "open": self.open_total,
            "open_critical": self.open_critical,
        }


def _submit(client: Any, ops: list[tuple[str, dict[str, Any]]], step: str) -> None:
    ops = [op for op in ops if op[1].get("rows")]
    if ops:
        plan = make_plan(ops, {"job_id": "alerts", "step_id": step})
        client.execute_plan(plan.model_dump(mode="json"))


def _upsert(table: str, key: str, rows: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    op = {"dataset": "derived", "table": table, "key_columns": [key], "rows": rows}
    return (UpsertParams.method, op)


def _ts(value: Any) -> datetime:
    parsed = parse_utc(value)
    if parsed is None:
        raise PermanentError("an alert cursor has no timestamp", code="bad_timestamp")
    return parsed


def _start(client: Any, lookback: timedelta) -> tuple[str | None, str]:
    """Where this sync starts reading: the saved position, or before it while it is fresh.

    A batch stamped before the saved position but committed after it (two writers at
    once) lands within ``lookback`` of the position being saved; re-reading that window
    until it has passed costs a few idempotent rows and skips no flag.
    """
    rows = client.query(
        {"dataset": "ops", "table": "cursors",
         "columns": ["position_ts", "position_key", "updated_at"], "filters": {"name": CURSOR}}
    )  # fmt: skip
    if not rows or not rows[0].get("position_ts"):
        return None, ""
    row = rows[0]
    saved_at = row.get("updated_at")
    if saved_at is None or datetime.now(tz=UTC) - _ts(saved_at) < lookback:
        return (_ts(row["position_ts"]) - lookback).isoformat(), ""
    return str(row["position_ts"]), str(row.get("position_key") or "")


def _page(client: Any, after_ts: str | None, after_key: str, size: int) -> list[dict[str, Any]]:
    """The next ``size`` flags after ``(after_ts, after_key)`` in (processed_at, flag_id) order."""
    base = {"dataset": "derived", "table": "safety_flags", "columns": ["*"]}
    if after_ts is None:
        return client.query({**base, "order_by": ["processed_at", "flag_id"], "limit": size})
    same = client.query(
        {**base, "order_by": ["flag_id"], "limit": size, "filters": [
            {"column": "processed_at", "op": "=", "value": after_ts},
            {"column": "flag_id", "op": ">", "value": after_key}]}
    )  # fmt: skip
    if len(same) >= size:
        return same
    later = client.query(
        {**base, "order_by": ["processed_at", "flag_id"], "limit": size - len(same),
         "filters": [{"column": "processed_at", "op": ">", "value": after_ts}]}
    )  # fmt: skip
    return same + later


def _alerts_by_id(client: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    rows = client.query(
        {"dataset": "derived", "table": "alerts", "columns": ["*"],
         "filters": [{"column": "alert_id", "op": "in", "value": ids}]}
    )  # fmt: skip
    return {r["alert_id"]: r for r in rows}


def _apply(
    flags: list[dict[str, Any]], existing: dict[str, dict[str, Any]], now: str, report: SyncReport
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Alert upserts, history rows and ops.events rows for one page of flags."""
    alerts, history, events = [], [], []
    for f in flags:
        aid = alert_id_of(str(f["flag_id"]))
        changed_now = f.get("active") is False
        old = existing.get(aid)
        if old is None:
            row = {
                "alert_id": aid, "flag_id": f["flag_id"], **{k: f.get(k) for k in _FLAG_FIELDS},
                "status": "open", "source_changed": changed_now, "opened_at": now,
                "acknowledged_by": None, "acknowledged_at": None, "acknowledge_note": None,
                "resolved_by": None, "resolved_at": None, "resolve_note": None,
                "notified_at": None, "updated_at": now,
            }  # fmt: skip
            alerts.append(row)
            existing[aid] = row
            history.append(_history(aid, "opened", "lorchestra", None))
            if changed_now:
                history.append(_history(aid, "source_changed", "lorchestra", None))
            events.append(
                event_row(kind=EVENT_KIND, key=aid, severity=str(f.get("severity")),
                          job_id="alerts", details={"alert_id": aid, "code": f.get("code"),
                          "instrument_code": f.get("instrument_code")})
            )  # fmt: skip
            report.opened.append(row)
            continue
        if bool(old.get("source_changed")) == changed_now:
            continue
        row = {**old, "source_changed": changed_now, "updated_at": now}
        history.append(
            _history(aid, "source_changed" if changed_now else "source_restored", "lorchestra",
                     None)
        )  # fmt: skip
        if not changed_now and old.get("status") == "resolved":
            row["status"] = "open"
            history.append(_history(aid, "reopened", "lorchestra", None))
        alerts.append(row)
        existing[aid] = row
        report.changed += 1
    return alerts, history, events


def _notify(client: Any, env: Mapping[str, str], now: str, report: SyncReport) -> None:
    """Notify every open critical alert not notified yet (a failed one is retried next time)."""
    notifier = notifier_from_env(env)
    if notifier is None:
        return
    pending = client.query(
        {"dataset": "derived", "table": "alerts", "columns": ["*"], "order_by": ["alert_id"],
         "filters": [{"column": "severity", "op": "=", "value": "critical"},
                     {"column": "status", "op": "=", "value": "open"},
                     {"column": "notified_at", "op": "is_null"}]}
    )  # fmt: skip
    done, history, events = [], [], []
    for alert in pending:
        try:
            notifier.send(notice(alert))
        except LorchestraError as exc:
            report.notify_errors.append(f"{alert['alert_id']}: {exc.message}")
            events.append(
                event_row(kind="alert_notification_failed", key=str(alert["alert_id"]),
                          severity="error", job_id="alerts",
                          details={"alert_id": alert["alert_id"], "error": exc.message})
            )  # fmt: skip
            continue
        done.append({**alert, "notified_at": now, "updated_at": now})
        history.append(_history(str(alert["alert_id"]), "notified", "lorchestra", notifier.kind))
    report.notified = len(done)
    _submit(client, [_upsert("alerts", "alert_id", done),
                     _upsert("alert_history", "history_id", history), events_op(events)],
            "notify")  # fmt: skip


#: The change column of each table the sync (not a job) writes: every write of an
#: alert or of its history moves it, so a job reading them (``view_proj_alerts`` and
#: the vault pages after it) can be fingerprinted and skipped on a quiet day.
CHANGE_COLUMNS = {"derived.alerts": "updated_at", "derived.alert_history": "at"}


def sync_alerts(
    client: Any,
    *,
    env: Mapping[str, str] | None = None,
    budget_s: float = 20.0,
    page: int = PAGE,
    lookback: timedelta = LOOKBACK,
) -> SyncReport:
    """Bring ``derived.alerts`` up to date with the flags, then notify new critical alerts.

    Pages through every flag written since the saved position (and, for
    ``lookback`` after a position was saved, the ``lookback`` before it); a sync
    that runs out of ``budget_s`` saves its position and the next one goes on
    from there. Returns counts and ids; raises on a failed write.
    """
    env = os.environ if env is None else env
    report = SyncReport()
    deadline = time.monotonic() + budget_s
    after_ts, after_key = _start(client, lookback)
    now = _now()
    while True:
        flags = _page(client, after_ts, after_key, page)
        if not flags:
            break
        report.flags_read += len(flags)
        existing = _alerts_by_id(client, sorted({alert_id_of(str(f["flag_id"])) for f in flags}))
        alerts, history, events = _apply(flags, existing, now, report)
        last = flags[-1]
        after_ts, after_key = str(last["processed_at"]), str(last["flag_id"])
        position = {"name": CURSOR, "position_ts": after_ts, "position_key": after_key,
                    "updated_at": now}  # fmt: skip
        # One atomic plan per page: alerts, their history, their events and the new position.
        _submit(client, [_upsert("alerts", "alert_id", alerts),
                         _upsert("alert_history", "history_id", history), events_op(events),
                         (UpsertParams.method, {"dataset": "ops", "table": "cursors",
                                        "key_columns": ["name"], "rows": [position]})],
                "sync")  # fmt: skip
        if len(flags) < page or time.monotonic() > deadline:
            break
    _notify(client, env, now, report)
    open_rows = client.query(
        {"dataset": "derived", "table": "alerts", "columns": ["severity"],
         "filters": {"status": "open"}}
    )  # fmt: skip
    report.open_total = len(open_rows)
    report.open_critical = sum(r.get("severity") == "critical" for r in open_rows)
    return report


def list_alerts(client: Any, *, show_all: bool = False) -> list[dict[str, Any]]:
    """Open alerts, most severe and newest first; with ``show_all`` the others after them.

    Reads ``canonical.proj_alerts`` (alerts with their client) when the views
    exist, else ``derived.alerts`` (no client column yet).
    """
    try:
        rows = client.query({"dataset": "canonical", "table": "proj_alerts", "columns": ["*"]})
    except LorchestraError:
        rows = client.query({"dataset": "derived", "table": "alerts", "columns": ["*"]})
    if not show_all:
        rows = [r for r in rows if r.get("status") == "open"]
    rank = {"critical": 0, "high": 1, "warning": 2}
    state = {s: n for n, s in enumerate(STATES)}
    rows.sort(key=lambda r: str(r.get("occurred_at") or ""), reverse=True)
    rows.sort(
        key=lambda r: (state.get(str(r.get("status")), 9), rank.get(str(r.get("severity")), 9))
    )
    return rows


def transition(client: Any, alert_id: str, action: str, *, actor: str, note: str) -> dict[str, Any]:
    """Acknowledge (``ack``) or resolve (``resolve``) one alert, with who and a note.

    Raises:
        AlertError: unknown alert id, an empty note, or a transition its state forbids
            (acknowledging a resolved alert, resolving one twice).
    """
    if action not in ("ack", "resolve"):
        raise AlertError(f"unknown alert action {action!r} (ack, resolve)")
    if not note.strip():
        raise AlertError("a note is required: say what was done (--note)")
    sync_alerts(client)  # an alert the vault shows but no sync has stored yet
    row = _alerts_by_id(client, [alert_id]).get(alert_id)
    if row is None:
        raise AlertError(f"no alert {alert_id!r}; `lorchestra alerts list --all` shows the ids")
    status = row.get("status")
    now = _now()
    if action == "ack":
        if status != "open":
            raise AlertError(f"alert {alert_id} is {status}; only an open alert is acknowledged")
        row = {**row, "status": "acknowledged", "acknowledged_by": actor, "acknowledged_at": now,
               "acknowledge_note": note, "updated_at": now}  # fmt: skip
        verb = "acknowledged"
    else:
        if status == "resolved":
            raise AlertError(f"alert {alert_id} is already resolved")
        row = {**row, "status": "resolved", "resolved_by": actor, "resolved_at": now,
               "resolve_note": note, "updated_at": now}  # fmt: skip
        verb = "resolved"
    _submit(client, [_upsert("alerts", "alert_id", [row]),
                     _upsert("alert_history", "history_id",
                             [_history(alert_id, verb, actor, note, now)])], action)  # fmt: skip
    return row


def history_of(client: Any, alert_id: str) -> list[dict[str, Any]]:
    """Every change of one alert, oldest first."""
    return client.query(
        {"dataset": "derived", "table": "alert_history", "columns": ["*"],
         "filters": {"alert_id": alert_id}, "order_by": ["at", "history_id"]}
    )  # fmt: skip
