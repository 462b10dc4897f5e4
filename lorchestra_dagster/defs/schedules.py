"""The ``daily_all`` schedule.

Cron and timezone come from the environment: ``LORCHESTRA_DAILY_CRON``
(default ``0 6 * * *``) and ``LORCHESTRA_TIMEZONE`` (default: the machine's
local zone, else UTC).

Catch-up: Dagster's scheduler only considers the most recent missed tick of a
non-partitioned schedule, so after the laptop slept through several mornings
one run starts when the daemon is back, not one per missed day. That one run
is enough: every ingest job reads from its cursor, so it collects everything
the missed days would have. A tick evaluated more than
``LORCHESTRA_SCHEDULE_MAX_LATENESS_H`` hours (default 20) after its scheduled
time is skipped instead: by then the next regular tick is close, and a
surprise run in the evening is worse than waiting. The run key is the
scheduled date, so a day never runs twice from the schedule.
"""

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from lorchestra_dagster.settings import Settings

DEFAULT_CRON = "0 6 * * *"


def local_timezone() -> str:
    """The IANA name of the machine's zone (``TZ`` or /etc/localtime), else UTC."""
    tz = os.environ.get("TZ")
    if tz and "/" in tz:
        return tz.lstrip(":")
    try:
        target = os.path.realpath("/etc/localtime")
        marker = "zoneinfo/"
        if marker in target:
            return target.split(marker, 1)[1]
    except OSError as exc:  # pragma: no cover - odd systems
        dg.get_dagster_logger().info(f"no local timezone ({type(exc).__name__}); using UTC")
    return "UTC"


def build_daily_schedule(job: Any, settings: Settings) -> dg.ScheduleDefinition:
    cron = settings.daily_cron or DEFAULT_CRON
    timezone = settings.timezone or local_timezone()
    max_lateness = timedelta(hours=settings.schedule_max_lateness_h)

    @dg.schedule(
        name="daily_all_schedule",
        cron_schedule=cron,
        execution_timezone=timezone,
        job=job,
        description=(
            f"daily_all at '{cron}' ({timezone}). Missed days are not replayed one by one: the "
            "next run reads from every stream's cursor and catches up."
        ),
    )
    def daily_all_schedule(context: dg.ScheduleEvaluationContext):
        scheduled = context.scheduled_execution_time or datetime.now(tz=UTC)
        lateness = datetime.now(tz=UTC) - scheduled.astimezone(UTC)
        if lateness > max_lateness:
            return dg.SkipReason(
                f"tick of {scheduled.isoformat()} is {lateness} late (more than {max_lateness}); "
                "the next tick will catch up"
            )
        day = scheduled.date().isoformat()
        return dg.RunRequest(
            run_key=f"daily_all:{day}",
            tags={"lorchestra/scheduled_date": day},
        )

    return daily_all_schedule
