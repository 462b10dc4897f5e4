"""Catalog texts shared by the spec tests (a plain module: conftest is not importable)."""

from __future__ import annotations

from lorchestra_dagster.callables import callable_traits

QUERY_JOB = """\
job_id: ingest_demo
version: '2.0'
description: demo ingest
steps:
- step_id: cursor
  op: storacle.query
  params:
    dataset: raw
    table: ingest_watermarks
    columns: ['MAX(watermark) AS since']
    filters: {stream: demo}
- step_id: ingest
  op: call
  params:
    callable: injest
    source: demo
    config:
      since: '@run.cursor.items[0].since'
- step_id: persist
  op: plan.build
  params:
    items: '@run.ingest.items'
    method: bq.upsert
    dataset: raw
    table: raw_objects
    key_columns: [idem_key]
- step_id: write
  op: storacle.submit
  params:
    plan: '@run.persist.plan'
"""

CANON_JOB = """\
job_id: canonize_demo
version: '2.0'
steps:
- step_id: read
  op: storacle.query
  params: {dataset: raw, table: raw_objects}
- step_id: canonize
  op: call
  params:
    callable: canonizer
    items: '@run.read.items'
    config: {transform_id: demo/x@1.0.0}
- step_id: persist
  op: plan.build
  params:
    items: '@run.canonize.items'
    method: sqlite.sync
    table: clients
    key_columns: [client_id]
- step_id: write
  op: storacle.submit
  params: {plan: '@run.persist.plan'}
"""

PIPELINE = """\
pipeline_id: pipeline.daily
stages:
- name: ingest
  jobs: [ingest_demo]
- name: canonize
  jobs: [canonize_demo]
stop_on_failure: true
"""

CLEAN_FILES = {
    "ingest/ingest_demo.yaml": QUERY_JOB,
    "canonize/canonize_demo.yaml": CANON_JOB,
    "pipelines/pipeline.daily.yaml": PIPELINE,
    "sources.yaml": "streams:\n  demo:\n    connector: jsonl\n    path: drop/*.jsonl\n",
    # A complete transform (meta, pinned expression, schemas), so registry checks pass too.
    "transforms/demo/x/1.0.0/spec.meta.yaml": "id: demo/x\nversion: 1.0.0\nengine: jsonata\n"
    "from_schema: iglu:org.demo/thing/jsonschema/1-0-0\n"
    "to_schema: iglu:org.demo/thing/jsonschema/1-0-0\n"
    "checksum:\n"
    "  jsonata_sha256: 09fc96082d34c2dfc1295d92073b5ea1dc8ef8da95f14dfded011ffb96d3e54b\n",
    "transforms/demo/x/1.0.0/spec.jsonata": "$",
    "schemas/org.demo/thing/jsonschema/1-0-0.json": '{"type": "object"}',
    "notes/readme.yaml": "just: some other yaml\n",
}
#: Two registered callables with their real registration traits (canonizer's transform key).
CALLABLES = {name: callable_traits()[name] for name in ("injest", "canonizer")}
TRANSFORMS = {"demo/x@1.0.0"}
