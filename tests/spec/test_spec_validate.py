"""validate_catalog: one fixture catalog per issue code, each located to its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_fixtures import CALLABLES, CANON_JOB, QUERY_JOB, TRANSFORMS

from lorchestra_dagster.spec import CODES, load_catalog, validate_catalog
from lorchestra_dagster.spec.issues import REGISTRY_CODES

pytestmark = pytest.mark.unit


def _job(steps: str, job_id: str = "bad_job", head: str = "") -> str:
    return f"job_id: {job_id}\nversion: '2.0'\n{head}steps:\n{steps}"


QUERY_STEP = """\
- step_id: read
  op: storacle.query
  params: {dataset: raw, table: raw_objects}
"""

# (code, files to add to the clean catalog, file the issue is in, line, col or None)
CASES: list[tuple[str, dict[str, str], str, int, int | None]] = [
    (
        "L001",
        {"ingest/broken.yaml": "job_id: broken\nsteps: [a,\n  b: c\n"},
        "ingest/broken.yaml",
        4,
        None,
    ),
    ("L001", {"schemas/x.yaml": "a: 'unterminated\n"}, "schemas/x.yaml", 2, None),
    ("L002", {"ingest/nojob.yaml": "version: '2.0'\nsteps: []\n"}, "ingest/nojob.yaml", 1, 1),
    ("L002", {"ingest/both.yaml": "job_id: both\npipeline_id: both\n"}, "ingest/both.yaml", 1, 1),
    (
        "L003",
        {"ingest/bad_job.yaml": _job(QUERY_STEP, head="description: a\ndescription: b\n")},
        "ingest/bad_job.yaml",
        4,
        1,
    ),
    (
        "L010",
        {"ingest/bad_job.yaml": _job(QUERY_STEP + "  retries: 3\n")},
        "ingest/bad_job.yaml",
        7,
        3,
    ),
    (
        "L010",
        {
            "ingest/bad_job.yaml": _job(
                "- step_id: read\n  op: storacle.query\n  params:\n    dataset: raw\n    table: t\n"
                "    colums: [a]\n"
            )
        },
        "ingest/bad_job.yaml",
        9,
        5,
    ),
    (
        "L011",
        {
            "ingest/bad_job.yaml": _job(
                "- step_id: read\n  op: storacle.query\n  params:\n    dataset: raw\n    table: t\n"
                "    limit: lots\n"
            )
        },
        "ingest/bad_job.yaml",
        9,
        12,
    ),
    (
        "L011",
        {"ingest/bad_job.yaml": _job(QUERY_STEP + "  continue_on_error: [1]\n")},
        "ingest/bad_job.yaml",
        7,
        22,
    ),
    (
        "L012",
        {"ingest/bad_job.yaml": "job_id: bad_job\nsteps:\n" + QUERY_STEP},
        "ingest/bad_job.yaml",
        1,
        1,
    ),
    (
        "L012",
        {"ingest/bad_job.yaml": _job("- step_id: a\n  params: {}\n")},
        "ingest/bad_job.yaml",
        4,
        3,
    ),
    (
        "L013",
        {"ingest/bad_job.yaml": "job_id: bad_job\nversion: 2.0\nsteps:\n" + QUERY_STEP},
        "ingest/bad_job.yaml",
        2,
        10,
    ),
    (
        "L013",
        {"ingest/bad_job.yaml": _job(QUERY_STEP.replace("step_id: read", "step_id: Read"))},
        "ingest/bad_job.yaml",
        4,
        12,
    ),
    (
        "L020",
        {"ingest/bad_job.yaml": _job(QUERY_STEP, job_id="other_name")},
        "ingest/bad_job.yaml",
        1,
        9,
    ),
    (
        "L021",
        {"views/ingest_demo.yaml": _job(QUERY_STEP, job_id="ingest_demo")},
        "views/ingest_demo.yaml",
        1,
        9,
    ),
    ("L022", {"ingest/bad_job.yaml": _job(QUERY_STEP + QUERY_STEP)}, "ingest/bad_job.yaml", 7, 12),
    (
        "L023",
        {"pipelines/p.yaml": "pipeline_id: pipeline.p\nstages:\n- {name: a, jobs: []}\n"},
        "pipelines/p.yaml",
        1,
        14,
    ),
    (
        "L030",
        {"ingest/bad_job.yaml": _job("- step_id: a\n  op: storacle.qeury\n  params: {}\n")},
        "ingest/bad_job.yaml",
        5,
        7,
    ),
    (
        "L031",
        {
            "ingest/bad_job.yaml": _job(
                QUERY_STEP
                + "- step_id: w\n  op: storacle.submit\n  params: {plan: '@run.nope.plan'}\n"
            )
        },
        "ingest/bad_job.yaml",
        9,
        18,
    ),
    (
        "L032",
        {
            "ingest/bad_job.yaml": _job(
                "- step_id: w\n  op: storacle.submit\n  params: {plan: '@run.read.plan'}\n"
                + QUERY_STEP
            )
        },
        "ingest/bad_job.yaml",
        6,
        18,
    ),
    (
        "L033",
        {
            "ingest/bad_job.yaml": _job(
                "- step_id: w\n  op: storacle.submit\n  params:\n    plan: '@run.w.plan'\n"
            )
        },
        "ingest/bad_job.yaml",
        7,
        11,
    ),
    (
        "L034",
        {
            "ingest/bad_job.yaml": _job(
                "- step_id: read\n  op: storacle.query\n  params:\n    dataset: raw\n"
                "    table: '@self.tabel'\n",
                head="table: raw_objects\n",
            )
        },
        "ingest/bad_job.yaml",
        9,
        12,
    ),
    (
        "L035",
        {
            "ingest/bad_job.yaml": _job(
                "- step_id: read\n  op: storacle.query\n  params:\n    dataset: '@ctx.ds..x'\n"
                "    table: t\n"
            )
        },
        "ingest/bad_job.yaml",
        7,
        14,
    ),
    (
        "L036",
        {"ingest/bad_job.yaml": _job(QUERY_STEP + "  if: '@run.read.items'\n")},
        "ingest/bad_job.yaml",
        7,
        7,
    ),
    (
        "L037",
        {"ingest/bad_job.yaml": _job(QUERY_STEP, head="mapping: maps/missing.yaml\n")},
        "ingest/bad_job.yaml",
        3,
        10,
    ),
    (
        "L038",
        {
            "ingest/bad_job.yaml": _job(
                QUERY_STEP + "- step_id: p\n  op: plan.build\n  params:\n"
                "    items: '@run.read.item'\n    method: wal.append\n    table: t\n"
            )
        },
        "ingest/bad_job.yaml",
        10,
        12,
    ),
    (
        "L040",
        {"ingest/bad_job.yaml": _job("- step_id: c\n  op: call\n  params:\n    callable: injst\n")},
        "ingest/bad_job.yaml",
        7,
        15,
    ),
    (
        "L041",
        {
            "ingest/bad_job.yaml": _job(
                "- step_id: p\n  op: plan.build\n  params:\n    items: []\n    method: bq.upsret\n"
            )
        },
        "ingest/bad_job.yaml",
        8,
        13,
    ),
    (
        "L042",
        {
            "ingest/bad_job.yaml": _job(
                "- step_id: read\n  op: storacle.query\n  params:\n    dataset: raw\n"
            )
        },
        "ingest/bad_job.yaml",
        7,
        5,
    ),
    (
        "L043",
        {
            "ingest/bad_job.yaml": _job(
                "- step_id: p\n  op: plan.build\n  params:\n    items: []\n    method: bq.upsert\n"
                "    dataset: raw\n    table: t\n"
            )
        },
        "ingest/bad_job.yaml",
        7,
        5,
    ),
    (
        "L043",
        {
            "ingest/bad_job.yaml": _job(
                "- step_id: p\n  op: plan.build\n  params:\n    items: []\n"
                "    method: sqlite.sync\n    key_columns: [id]\n"
            )
        },
        "ingest/bad_job.yaml",
        7,
        5,
    ),
    (
        "L043",
        {
            "ingest/bad_job.yaml": _job(
                "- step_id: p\n  op: plan.build\n  params:\n    method: file.write\n"
            )
        },
        "ingest/bad_job.yaml",
        7,
        5,
    ),
    (
        "L044",
        {"canonize/canonize_demo.yaml": CANON_JOB.replace("demo/x@1.0.0", "demo/y@9.0.0")},
        "canonize/canonize_demo.yaml",
        12,
        28,
    ),
    (
        "L045",
        {
            "ingest/bad_job.yaml": _job(
                "- step_id: child\n  op: job.run\n  params:\n    job_id: ghost_job\n"
            )
        },
        "ingest/bad_job.yaml",
        7,
        13,
    ),
    (
        "L046",
        {"ingest/bad_job.yaml": _job(QUERY_STEP, head="deps: [canonize/ingest_demo]\n")},
        "ingest/bad_job.yaml",
        3,
        8,
    ),
    (
        "L046",
        {"ingest/bad_job.yaml": _job(QUERY_STEP, head="deps:\n- ingest/ingest_demo\n- x/nope\n")},
        "ingest/bad_job.yaml",
        5,
        3,
    ),
    (
        "L048",
        {
            "projection/file/bad_job.yaml": _job(
                "- step_id: render\n  op: call\n  params:\n    callable: file_renderer\n"
                "    query: SELECT * FROM clients\n"
            )
        },
        "projection/file/bad_job.yaml",
        8,
        None,
    ),
    (
        "L050",
        {
            "pipelines/pipeline.x.yaml": "pipeline_id: pipeline.x\nstages:\n- name: a\n"
            "  jobs: [ingest_demo, ghost]\n"
        },
        "pipelines/pipeline.x.yaml",
        4,
        23,
    ),
    (
        "L051",
        {
            "pipelines/pipeline.a.yaml": "pipeline_id: pipeline.a\nstages:\n"
            "- {name: s, jobs: [pipeline.b]}\n",
            "pipelines/pipeline.b.yaml": "pipeline_id: pipeline.b\nstages:\n"
            "- {name: s, jobs: [pipeline.a]}\n",
        },
        "pipelines/pipeline.a.yaml",
        3,
        20,
    ),
    (
        "L052",
        {
            "pipelines/pipeline.loop.yaml": "pipeline_id: pipeline.loop\nstages:\n"
            "- name: s\n  loop:\n    over: '@run.nowhere.items'\n    jobs: [bad_job]\n",
            "ingest/bad_job.yaml": _job(QUERY_STEP),
        },
        "pipelines/pipeline.loop.yaml",
        5,
        11,
    ),
    (
        "L060",
        {"sources.yaml": "streams:\n  demo:\n    connector: jsonl\n    password: hunter2\n"},
        "sources.yaml",
        4,
        15,
    ),
    (
        "L060",
        {"instruments/phq9.yaml": "id: phq9\napi_key: 'abc123'\n"},
        "instruments/phq9.yaml",
        2,
        10,
    ),
    (
        "L061",
        {"notes/keys.yaml": "stripe: sk_live_4eC39HqLyjWDarjtT1zdp7dc\n"},
        "notes/keys.yaml",
        1,
        9,
    ),
    (
        "L061",
        {"bindings/b.yaml": "header: ghp_16C7e42F292c6912E7710c838347Ae178B4a\n"},
        "bindings/b.yaml",
        1,
        9,
    ),
    ("L061", {"notes/aws.yaml": "- AKIAIOSFODNN7EXAMPLE\n"}, "notes/aws.yaml", 1, 3),
    (
        "L061",
        {"notes/slack.yaml": "hook: xoxb-123456789012-abcdefghijkl\n"},
        "notes/slack.yaml",
        1,
        7,
    ),
    (
        "L061",
        {
            "notes/jwt.yaml": "x: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\n"
        },
        "notes/jwt.yaml",
        1,
        4,
    ),
    (
        "L061",
        {"notes/entropy.yaml": "blob: Q3xZ9kLm2PqR7vT1wY5bN8cD4fG6hJ0s\n"},
        "notes/entropy.yaml",
        1,
        7,
    ),
]


def _rel(root: Path, issue_path: str) -> str:
    return Path(issue_path).relative_to(root).as_posix()


@pytest.mark.parametrize(
    ("code", "files", "where", "line", "col"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_each_code_is_reported_at_its_line(write_catalog, code, files, where, line, col):
    root = write_catalog(files)
    issues = validate_catalog(root, callables=CALLABLES, transform_ids=TRANSFORMS)
    hits = [i for i in issues if i.code == code]
    assert hits, f"{code} not reported; got {[i.render() for i in issues]}"
    located = [(_rel(root, i.path), i.line, i.col) for i in hits]
    assert any(w == where and ln == line and (col is None or c == col) for w, ln, c in located), (
        located
    )
    assert code in CODES


def test_every_code_has_a_case():
    covered = {c[0] for c in CASES}
    assert set(CODES) - REGISTRY_CODES == covered


def test_clean_catalog_passes(write_catalog):
    root = write_catalog({})
    issues = validate_catalog(root, callables=CALLABLES, transform_ids=TRANSFORMS)
    assert issues == []
    catalog = load_catalog(root)
    assert set(catalog.jobs) == {"ingest_demo", "canonize_demo"}
    assert catalog.jobs["ingest_demo"].stage == "ingest"
    assert set(catalog.pipelines) == {"pipeline.daily"}


def test_collects_all_errors_in_one_pass(write_catalog):
    bad = (
        "job_id: multi\nversion: '2.0'\nsteps:\n"
        "- step_id: a\n  op: nope.op\n  params: {}\n"
        "- step_id: b\n  op: call\n  params:\n    callable: missing_fn\n"
        "    items: '@run.zz.items'\n"
        "- step_id: b\n  op: storacle.submit\n  params: {plan: '@run.a.plan'}\n"
    )
    root = write_catalog(
        {
            "ingest/multi.yaml": bad,
            "ingest/syntax.yaml": "a: [\n",
            "sources.yaml": "password: hunter2\n",
            "pipelines/pipeline.ghost.yaml": "pipeline_id: pipeline.ghost\nstages:\n"
            "- {name: s, jobs: [no_such_job]}\n",
        }
    )
    issues = validate_catalog(root, callables=CALLABLES, transform_ids=TRANSFORMS)
    codes = {i.code for i in issues}
    assert {"L030", "L040", "L031", "L022", "L001", "L060", "L050"} <= codes
    # sorted by file then position, so the output reads top to bottom
    assert issues == sorted(issues, key=lambda i: i.sort_key)


def test_references_checked_even_when_schema_fails(write_catalog):
    steps = (
        QUERY_STEP
        + "  bogus_key: 1\n- step_id: w\n  op: storacle.submit\n  params: {plan: '@run.x.plan'}\n"
    )
    root = write_catalog({"ingest/bad_job.yaml": _job(steps)})
    codes = [i.code for i in validate_catalog(root)]
    assert "L010" in codes and "L031" in codes


def test_optional_checks_skipped_without_registries(write_catalog):
    root = write_catalog(
        {"canonize/canonize_demo.yaml": CANON_JOB.replace("callable: canonizer", "callable: zzz")}
    )
    assert validate_catalog(root) == []
    assert [i.code for i in validate_catalog(root, callables=CALLABLES)] == ["L040"]


def test_secret_allowed_forms_pass(write_catalog):
    root = write_catalog(
        {
            "sources.yaml": (
                "streams:\n  s:\n    connector: jsonl\n    path: x\n"
                "    token_env: GMAIL_TOKEN\n    client_secret: ${CLIENT_SECRET}\n"
                "    password: env:DB_PASSWORD\n    api_key: '@ctx.api_key'\n    token: null\n"
                "    token_url: https://login.example.test/token\n    max_tokens: 512\n"
                "    checksum_sha256: "
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
                "    idem_key: stripe:stripe-main:customer:cus_ABCdef1234567890XYZ\n"
                "    long_name: canonize_gmail_email_jmap_lite_version_one\n"
            )
        }
    )
    assert validate_catalog(root) == []


def test_issue_render_and_extra_yaml_loaded(write_catalog):
    job = _job(
        "- step_id: read\n  op: storacle.query\n  params: '@self.query'\n",
        head="query: queries/q.yaml\n",
    )
    root = write_catalog({"ingest/bad_job.yaml": job, "queries/q.yaml": "dataset: raw\ntable: t\n"})
    issues = validate_catalog(root)
    assert issues, "params must be a mapping, not a reference"
    line = issues[0].render()
    assert line.startswith(str(root / "ingest/bad_job.yaml") + ":")
    assert f" {issues[0].code} " in line


@pytest.mark.parametrize(
    "head",
    [
        "target: queries/target.yaml\n",
        # A key both top-level and under ``extras:``: the top-level one wins, in the loaded
        # JobDef and in validation alike (one merge), so L037 checks the file the run loads.
        "target: queries/target.yaml\nextras: {target: queries/gone.yaml}\n",
    ],
)
def test_extra_yaml_file_is_loaded_into_the_jobdef(write_catalog, head):
    job = _job(
        "- step_id: read\n  op: storacle.query\n  params:\n    dataset: raw\n"
        "    table: '@self.target.table'\n",
        head=head,
    )
    root = write_catalog({"ingest/bad_job.yaml": job, "queries/target.yaml": "table: clients\n"})
    assert validate_catalog(root) == []
    loaded = load_catalog(root).job("bad_job")
    assert loaded.jobdef.extras["target"] == {"table": "clients"}
    assert loaded.extra_files["target"] == root / "queries/target.yaml"


def test_missing_catalog_dir_is_an_issue(tmp_path):
    issues = validate_catalog(tmp_path / "nope")
    assert [i.code for i in issues] == ["L002"]


def test_query_job_fixture_is_valid_standalone(write_catalog):
    root = write_catalog({"ingest/ingest_demo.yaml": QUERY_JOB}, base=False)
    assert validate_catalog(root, callables=CALLABLES) == []
