"""Graph-backed software-defined assets, one per stage job, with lineage from data.

Key ``naming.asset_key(stage, job_id)``, group = stage, ``code_version`` = the
JobDef hash, the YAML path and what the job reads and writes in metadata.
Upstream assets come from ``spec.lineage`` (inferred reads vs writes, plus
``deps:``); each becomes an input of the asset's first op, loaded by
``StoracleIOManager.load_input`` as a reference, never as rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg

from lorchestra_dagster import naming
from lorchestra_dagster.defs.graphs import build_graph
from lorchestra_dagster.spec import job_def_sha256
from lorchestra_dagster.spec.lineage import JobIO, Lineage, job_io, lineage_from_jobs

STAGE_JOBS = naming.STAGES


@dataclass
class AssetBuild:
    """The assets of a catalog and the lineage they were built from."""

    assets: list[dg.AssetsDefinition]
    lineage: Lineage
    keys: dict[str, dg.AssetKey]
    stages: dict[str, str]


def asset_key_of(stage: str, job_id: str) -> dg.AssetKey:
    return dg.AssetKey(naming.asset_key(stage, job_id))


def upstream_input_name(stage: str, job_id: str) -> str:
    return "up_" + naming.graph_name(f"{stage}__{job_id}")


def _kinds(io: JobIO, backend: str) -> dict[str, str]:
    kinds: list[str] = []
    if io.writes or io.reads:
        kinds.append(backend)
    if io.sqlite_tables:
        kinds.append("sqlite")
    if io.files:
        kinds.append("files")
    return {f"dagster/kind/{k}": "" for k in kinds[:3]}


def _metadata(loaded: Any, io: JobIO, spec_hash: str) -> dict[str, Any]:
    writes = [
        {
            "table_name": w.table_name,
            "dataset": w.dataset,
            "table": w.table,
            "filters": dict(w.filters),
            "key_columns": io.key_columns.get(w.table_name, []),
        }
        for w in io.writes
    ]
    return {
        "lorchestra/yaml_path": dg.MetadataValue.path(str(loaded.path)),
        "lorchestra/job_id": loaded.jobdef.job_id,
        "lorchestra/spec_hash": spec_hash,
        "lorchestra/writes": dg.MetadataValue.json(writes),
        "lorchestra/reads": dg.MetadataValue.json([r.describe() for r in io.reads]),
        "lorchestra/steps": len(loaded.jobdef.steps),
    }


def build_assets(
    catalog: Any,
    *,
    backend: str = "duckdb",
    extra_upstream: dict[str, list[dg.AssetKey]] | None = None,
) -> AssetBuild:
    """One graph-backed asset per job of the five stages; lineage validated first.

    ``extra_upstream`` adds non-lineage upstream assets (the stage gates of a
    stop_on_failure pipeline) to a job's asset.
    """
    loaded_jobs = [
        j for stage in STAGE_JOBS for j in sorted(catalog.jobs_in_stage(stage), key=_job_id)
    ]
    lineage = lineage_from_jobs((j.job_id, j.stage, j.jobdef, str(j.path)) for j in loaded_jobs)
    keys = {j.job_id: asset_key_of(j.stage, j.job_id) for j in loaded_jobs}
    stages = {j.job_id: j.stage for j in loaded_jobs}
    assets: list[dg.AssetsDefinition] = []
    for loaded in loaded_jobs:
        io = lineage.jobs[loaded.job_id]
        ups = [u for u in lineage.deps.get(loaded.job_id, []) if u in keys]
        inputs = {upstream_input_name(stages[u], u): keys[u] for u in ups}
        for gate in (extra_upstream or {}).get(loaded.job_id, []):
            inputs["gate_" + gate.to_python_identifier()] = gate
        graph = build_graph(loaded, list(inputs))
        spec_hash = job_def_sha256(loaded.jobdef)
        description = loaded.jobdef.description or loaded.job_id
        assets.append(
            dg.AssetsDefinition.from_graph(
                graph,
                keys_by_input_name=inputs,
                keys_by_output_name={"result": keys[loaded.job_id]},
                group_name=loaded.stage,
                descriptions_by_output_name={"result": f"{description}\n\n`{loaded.path}`"},
                metadata_by_output_name={"result": _metadata(loaded, io, spec_hash)},
                tags_by_output_name={"result": _kinds(io, backend)},
                code_versions_by_output_name={"result": spec_hash},
            )
        )
    return AssetBuild(assets=assets, lineage=lineage, keys=keys, stages=stages)


def _job_id(loaded: Any) -> str:
    return loaded.job_id


def job_io_of(loaded: Any) -> JobIO:
    return job_io(loaded.job_id, loaded.stage, loaded.jobdef, str(loaded.path))
