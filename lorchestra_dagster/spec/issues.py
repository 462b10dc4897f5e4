"""Validation issues and their stable codes.

Codes are part of the public surface (scripts and CI grep for them); never
reuse or renumber one. The same table is in ``docs/validation.md``.

====  =====================================================================
code  meaning
====  =====================================================================
L001  YAML syntax error (or a file that is not UTF-8 text)
L002  wrong file shape: both job_id and pipeline_id, job-like keys without an
      id (steps/stages), or a catalog directory that does not exist
L003  duplicate key in one YAML mapping (the last one silently wins)
L010  unknown key
L011  wrong type
L012  missing required field
L013  invalid value (pattern, allowed values, range)
L020  job_id differs from the file stem
L021  duplicate job or pipeline id across files
L022  duplicate step id in a job
L023  pipeline_id differs from the file stem (warning)
L030  unknown op
L031  @run reference to an unknown step
L032  @run reference to a later step
L033  @run reference to the step itself
L034  @self reference to a missing extra
L035  malformed reference (starts like @ctx/@payload/@self/@run, does not parse)
L036  @run reference in a compile-time 'if'
L037  @self extra names a .yaml file that does not exist under the catalog
L038  @run reference to an output key the step's op never produces
L040  unknown callable
L041  unknown plan.build method
L042  storacle.query without dataset or table
L043  plan.build without a param its method needs (items, method, dataset,
      table, key_columns)
L044  unknown transform id (canonizer params.config.transform_id)
L045  job.run names a job not in the catalog
L046  deps names an asset that is not '<stage>/<job_id>' of a catalog job, or
      backfill_of names no job
L047  bq.execute SQL that is not one CREATE [OR REPLACE] VIEW in canonical or
      derived (storacle refuses it at run time with code sql_not_view)
L048  a param of an original callable that is refused here (file_renderer
      query/sqlite_path: free SQL over the vault); the message says what to write
L050  pipeline names a job or pipeline not in the catalog
L051  cycle between pipelines (the message prints the cycle path)
L052  loop stage whose 'over' is not @run.<job_id>... of a job in an earlier
      stage of the same pipeline
L060  a secret-named key (password, token, api_key, ...) holds a literal
L061  a value shaped like a credential (sk_live_, ghp_, AKIA, xoxb-, JWT,
      private key, long high-entropy string)
====  =====================================================================
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["error", "warning"]
"""An error fails validation; a warning is printed and passes."""

CODES: dict[str, str] = {
    "L001": "YAML syntax error",
    "L002": "wrong file shape",
    "L003": "duplicate YAML key",
    "L010": "unknown key",
    "L011": "wrong type",
    "L012": "missing required field",
    "L013": "invalid value",
    "L020": "job_id differs from file stem",
    "L021": "duplicate id",
    "L022": "duplicate step id",
    "L023": "pipeline_id differs from file stem",
    "L030": "unknown op",
    "L031": "@run reference to unknown step",
    "L032": "@run reference to later step",
    "L033": "@run reference to itself",
    "L034": "@self reference to missing extra",
    "L035": "malformed reference",
    "L036": "@run reference in compile-time if",
    "L037": "@self extra file missing",
    "L038": "@run reference to unknown output key",
    "L040": "unknown callable",
    "L041": "unknown plan method",
    "L042": "storacle.query missing required param",
    "L043": "plan.build missing required param",
    "L044": "unknown transform id",
    "L045": "job.run names unknown job",
    "L046": "deps names unknown asset",
    "L047": "bq.execute SQL is not a view",
    "L048": "callable param refused here",
    "L050": "pipeline names missing job or pipeline",
    "L051": "cycle between pipelines",
    "L052": "loop over a job of no earlier stage",
    "L060": "literal secret under a secret-named key",
    "L061": "value shaped like a credential",
    "L070": "sources.yaml stream settings invalid",
    "L071": "injest step names a stream missing from sources.yaml",
    "L072": "transform registry problem (meta, checksum, schemas, golden files)",
    "L073": "instrument or binding registry problem",
    "L074": "lineage: cycle, later-stage or ambiguous dependency between jobs",
}


#: Codes ``lorchestra validate`` adds from registries owned by upper layers (sources,
#: transforms, instruments, lineage, storacle's view rule); spec's own ``validate_catalog``
#: never reports them. Their cases live in tests/cli/test_validate_sources.py (L047 in
#: tests/cli/test_run_cli.py).
REGISTRY_CODES = frozenset({"L047", "L070", "L071", "L072", "L073", "L074"})


class Issue(BaseModel):
    """One problem found in a catalog, located to ``path:line:col``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="File the issue is in")
    line: int = Field(ge=1, description="1-based line")
    col: int = Field(ge=1, description="1-based column")
    code: str = Field(description="Stable code, see lorchestra_dagster.spec.issues")
    message: str = Field(description="What is wrong and what to do")
    severity: Severity = Field(default="error", description="Warnings pass")

    def render(self) -> str:
        """``path:line:col: CODE message`` (warnings add ``(warning)``)."""
        tail = " (warning)" if self.severity == "warning" else ""
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}{tail}"

    def __str__(self) -> str:
        return self.render()

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.col, self.code)


def errors_only(issues: list[Issue]) -> list[Issue]:
    """The issues that fail validation."""
    return [i for i in issues if i.severity == "error"]
