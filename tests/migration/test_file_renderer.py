"""The original's ``file_renderer``: markdown files from rows and templates, into the vault.

The job is the original's ``file_proj_clients`` shape (``path_template``,
``content_template``, ``front_matter``, ``base_path: ~/clinical-vault/views``)
with its free-SQL ``query`` over the vault's SQLite replaced by a
``storacle.query`` of the projection: the files land under the vault through
``file.write`` (0600, written only when changed).
"""

from __future__ import annotations

import stat

import pytest
import yaml
from migration_kit import issues_of, services_for, write_catalog
from test_seed_callables import SEED, VIEW_JOB, VIEW_SQL

from lorchestra_dagster.callables import CallContext, get_callable
from lorchestra_dagster.engine import execute_with
from lorchestra_dagster.errors import PermanentError

FILE_JOB = """\
job_id: file_proj_clients
version: '2.0'
steps:
- step_id: read
  op: storacle.query
  params:
    dataset: canonical
    table: proj_clients
    columns: [idem_key, name]
    order_by: idem_key
- step_id: render
  op: call
  params:
    callable: file_renderer
    items: '@run.read.items'
    base_path: ~/clinical-vault/views
    path_template: '{idem_key}/contact.md'
    content_template: "# {name}\\n\\nRecord {idem_key}\\n"
    front_matter:
      source_type: contact
      idem_key: '{idem_key}'
- step_id: persist
  op: plan.build
  params:
    items: '@run.render.items'
    method: file.write
- step_id: write
  op: storacle.submit
  params:
    plan: '@run.persist.plan'
"""

ORIGINAL_FORM = """\
job_id: file_proj_clients
version: '2.0'
steps:
- step_id: render
  op: call
  params:
    callable: file_renderer
    sqlite_path: ~/clinical-vault/local.db
    query: SELECT client_folder FROM clients
    base_path: ~/clinical-vault/views
    path_template: '{client_folder}/contact.md'
    content_template: '# {client_folder}'
"""


def _ctx(tmp_path) -> CallContext:
    return CallContext(catalog_dir=tmp_path, home=tmp_path, env={})


@pytest.mark.e2e
def test_rows_render_to_private_vault_files_and_a_rerun_writes_nothing(tmp_path, _isolated_home):
    cat = write_catalog(
        tmp_path / "jobs",
        {
            "projection/view/view_proj_clients.yaml": VIEW_JOB,
            "projection/file/file_proj_clients.yaml": FILE_JOB,
            "canonize/seed_contacts.yaml": SEED,
            "projections/proj_clients.sql": VIEW_SQL,
        },
    )
    assert issues_of(cat, "projection/file/file_proj_clients.yaml") == []
    rows = [
        {"idem_key": f"c{n}", "canonical_schema": "iglu:org.canonical/contact/jsonschema/2-0-0",
         "payload": {"name": f"client {n}"}}
        for n in (1, 2)
    ]  # fmt: skip
    with services_for(cat, _isolated_home) as svc:
        for job, env in (("seed_contacts", {"payload": {"rows": rows}}), ("view_proj_clients", {})):
            assert execute_with({"job_id": job, **env}, svc).status == "succeeded"
        first = execute_with({"job_id": "file_proj_clients"}, svc)
        assert first.status == "succeeded", first.error_message()
        again = execute_with({"job_id": "file_proj_clients"}, svc)
        vault = svc.settings.vault_dir
    assert first.submitted["inserted"] == 2
    assert again.status == "succeeded"
    counts = again.submitted
    assert (counts["inserted"], counts["updated"], counts["unchanged"]) == (0, 0, 2)
    path = vault / "views" / "c1" / "contact.md"
    text = path.read_text()
    head, body = text.split("---\n")[1], text.split("---\n", 2)[2]
    assert yaml.safe_load(head) == {"source_type": "contact", "idem_key": "c1"}
    assert body == "\n# client 1\n\nRecord c1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.unit
def test_the_original_free_sql_form_is_reported_with_what_to_write(tmp_path):
    rel = "projection/file/file_proj_clients.yaml"
    cat = write_catalog(tmp_path / "jobs", {rel: ORIGINAL_FORM})
    found = issues_of(cat, "projection/file/file_proj_clients.yaml")
    assert {(code, line) for code, line, _ in found} == {("L048", 8), ("L048", 9)}
    assert all("storacle.query" in msg for _, _, msg in found)
    params = yaml.safe_load(ORIGINAL_FORM)["steps"][0]["params"]
    with pytest.raises(PermanentError, match="free SQL over the vault"):
        get_callable("file_renderer")(params, _ctx(tmp_path))


@pytest.mark.unit
@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{idem_key.__class__}", "must be a plain column name"),
        ("{0}", "must be a plain column name"),
        ("{idem_key[0]}", "must be a plain column name"),
        ("{_projected_at}", "rewrite every file on every run"),
        ("{missing}", r"has no column \['missing'\]"),
    ],
)
def test_templates_reach_plain_columns_only(tmp_path, template, message):
    params = {"items": [{"idem_key": "c1", "name": "Ada Secret"}],
              "path_template": "x.md", "content_template": template}  # fmt: skip
    with pytest.raises(PermanentError, match=message) as err:
        get_callable("file_renderer")(params, _ctx(tmp_path))
    assert "Ada Secret" not in str(err.value)  # columns by name, never a value


@pytest.mark.unit
def test_paths_stay_in_the_vault(tmp_path):
    params = {"items": [{"k": "a"}], "path_template": "{k}.md", "content_template": "{k}"}
    out = get_callable("file_renderer")({**params, "base_path": "/abs/views"}, _ctx(tmp_path))
    assert out["items"] == [{"path": "views/a.md", "content": "a"}]
    assert get_callable("file_renderer")(params, _ctx(tmp_path))["items"][0]["path"] == "a.md"
    with pytest.raises(PermanentError, match="inside the vault"):
        get_callable("file_renderer")({**params, "base_path": "../up"}, _ctx(tmp_path))
