"""Did anything a job reads or writes change since it last ran? Fingerprints of table slices.

A job's *signature* hashes its code version (the JobDef hash), the
registries' hash, the envelope (ctx, payload, limit) and a fingerprint of
every warehouse slice it reads and writes: ``COUNT(*)`` and the latest value
of the slice's change column (the auto timestamp every insert or update sets:
``last_seen``, ``canonicalized_at``, ``processed_at``). A view is
fingerprinted by what its SQL reads plus the code of the job that creates it.

The catalog op stores the signature as metadata of the job's materialization
(reads as fingerprinted before the run, the job's own slices after it), and
the same hash (shortened) as the asset's Dagster data version. Only slices no
other job writes count among the job's own: a slice several jobs of a stage
share changes with each of them, in whatever order they finish. Before
running a job the op computes the signature again: equal means nothing the
job reads or writes moved (not through lorchestra, not behind its
back) and the job is skipped. Two queries per slice, on columns the warehouse
keeps columnar: milliseconds, where a rerun costs seconds to minutes.

Never skipped: jobs that talk to the outside world (ingest: the source is the
input), jobs with a read only known at run time, and jobs reading a table
whose writers set no change column (nothing to fingerprint it by).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import dagster as dg

from lorchestra_dagster.alerts.store import CHANGE_COLUMNS as ALERT_CHANGE_COLUMNS
from lorchestra_dagster.errors import LorchestraError
from lorchestra_dagster.spec.lineage import JobIO, Slice
from lorchestra_dagster.spec.models import callable_of

SIGNATURE_KEY = "lorchestra/input_signature"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def envelope_sha(envelope: dict[str, Any]) -> str:
    """What of the envelope changes a job's result (not the run id, not the batch size)."""
    keep = {k: envelope.get(k) for k in ("ctx", "payload", "limit")}
    return sha(json.dumps(keep, sort_keys=True, default=str))[:16]


@dataclass(frozen=True)
class Inputs:
    """What a job's signature covers."""

    reads: tuple[Slice, ...]
    outputs: tuple[Slice, ...]
    external: bool

    @classmethod
    def of(cls, io: JobIO, jobdef: Any, stage: str) -> Inputs:
        from lorchestra_dagster.callables import traits_of

        # Ingest reads the outside world (an external callable) and a clock callable the
        # date: neither is a table slice, so such a job is never skipped as unchanged.
        called = [traits_of(callable_of(s.op, s.params_dict())) for s in jobdef.steps]
        external = stage == "ingest" or any(
            t is not None and (t.external or t.clock) for t in called
        )
        # A read of the job's own output (its render state, a watermark) is taken with
        # its outputs, after the run: the job's own write must not look like new input.
        reads = tuple(r for r in io.reads if not any(r.overlaps(w) for w in io.writes))
        return cls(reads=reads, outputs=tuple(io.writes), external=external)


class Fingerprints:
    """Fingerprints slices through the storacle client; knows change columns and views."""

    def __init__(self, jobs: dict[str, Any], registry_sha: str) -> None:
        self.registry_sha = registry_sha
        self.change: dict[str, str] = {}
        self.views: dict[str, Any] = {}
        #: per job, the written slices no other job writes: only those say something about
        #: the job itself (a slice shared by jobs of one stage changes with each of them)
        self.exclusive: dict[str, tuple[Slice, ...]] = {
            jid: tuple(
                sl
                for sl in job.inputs.outputs
                if not any(
                    sl.overlaps(other)
                    for ojid, ojob in jobs.items()
                    if ojid != jid
                    for other in ojob.inputs.outputs
                )
            )
            for jid, job in jobs.items()
        }
        # Tables the alert sync writes outside any job have their change column declared
        # by their owner; without it every reader of alerts would rerun every day.
        self.change.update(ALERT_CHANGE_COLUMNS)
        for job in jobs.values():
            for table, columns in job.io.change_columns.items():
                if columns:
                    self.change.setdefault(table, columns[0])
            if job.io.derives:
                for sl in job.io.writes:
                    self.views[sl.table_name] = job

    def knows(self, sl: Slice, _seen: frozenset[str] = frozenset()) -> bool:
        """Can ``sl`` be fingerprinted (a change column, or a view of such slices)?"""
        if sl.table_name in self.change:
            return True
        view = self.views.get(sl.table_name)
        if view is None or view.job_id in _seen:
            return False
        seen = _seen | {view.job_id}
        return bool(view.io.reads) and all(self.knows(r, seen) for r in view.io.reads)

    def skippable(self, job: Any) -> bool:
        inputs: Inputs = job.inputs
        if inputs.external or job.io.opaque_reads or not inputs.reads:
            return False
        return all(self.knows(sl) for sl in inputs.reads)

    def slice(self, client: Any, sl: Slice) -> str:
        """``count:latest`` of a table slice ("missing" before its table exists)."""
        column = self.change.get(sl.table_name)
        if column is None:
            view = self.views.get(sl.table_name)
            if view is None:
                return "unknown"
            parts = [view.spec_hash] + [self.slice(client, r) for r in view.io.reads]
            return sha("|".join(parts))[:16]
        try:
            rows = client.query(
                {
                    "dataset": sl.dataset,
                    "table": sl.table,
                    "columns": ["COUNT(*) AS n", f"MAX({column}) AS latest"],
                    "filters": dict(sl.filters),
                }
            )
        except LorchestraError:
            return "missing"  # no table yet (first run), or a column the writers add later
        row = rows[0] if rows else {}
        return f"{row.get('n', 0)}:{row.get('latest')}"

    def reads(self, client: Any, job: Any) -> dict[str, str]:
        """Fingerprints of what the job reads, taken before it runs (what it will see)."""
        return {sl.describe(): self.slice(client, sl) for sl in job.inputs.reads}

    def signature(
        self, client: Any, job: Any, env_sha: str, reads: dict[str, str] | None = None
    ) -> str:
        """The job's signature: ``reads`` as taken before the run, its own slices now."""
        parts = {
            "code": job.spec_hash,
            "registries": self.registry_sha,
            "envelope": env_sha,
            "reads": self.reads(client, job) if reads is None else reads,
            "writes": {
                sl.describe(): self.slice(client, sl)
                for sl in self.exclusive.get(job.job_id, ())
                if sl.table_name in self.change
            },
        }
        return sha(json.dumps(parts, sort_keys=True, default=str))[:32]


@dataclass
class Previous:
    """What the instance remembers of a job's last materialization."""

    signature: str | None = None
    run_id: str | None = None


def previous(instance: dg.DagsterInstance, keys: dict[str, dg.AssetKey]) -> dict[str, Previous]:
    """``{job_id: Previous}`` from the latest materialization of each job's asset."""
    by_key = {key: jid for jid, key in keys.items()}
    out: dict[str, Previous] = {}
    for key, entry in instance.get_latest_materialization_events(list(by_key)).items():
        if entry is None or entry.asset_materialization is None:
            continue
        sig = entry.asset_materialization.metadata.get(SIGNATURE_KEY)
        out[by_key[key]] = Previous(
            signature=str(sig.value) if sig is not None else None, run_id=entry.run_id
        )
    return out
