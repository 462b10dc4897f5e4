"""What the validation rules read and what they yield (``spec/validate.py`` runs them).

A rule is a pure function: it takes the ``Context`` of the catalog, one
``Job`` or one step's ``StepParams``, and yields ``Finding``s (file, YAML
path, code, message); it reads the raw YAML, never the loaded models, so a
file with a schema error is still checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from lorchestra_dagster.spec.catalog import Catalog, CatalogFile
from lorchestra_dagster.spec.models import JobDef
from lorchestra_dagster.spec.traits import CallableTraits
from lorchestra_dagster.spec.yamlpos import YamlPath


class Finding(NamedTuple):
    """One problem a rule found: the file, the YAML path inside it, its code and message."""

    file: CatalogFile
    path: YamlPath
    code: str
    message: str


@dataclass
class Context:
    """The catalog under validation and the registries its caller handed down."""

    cat: Catalog
    callables: Mapping[str, CallableTraits] | None
    transform_ids: set[str] | None
    view_sql: Callable[[str, str], None] | None
    #: every job/pipeline id any file declares (valid or not), mapped to its kind
    ids: dict[str, str] = field(init=False, default_factory=dict)
    #: every declared job id, mapped to the stage folder it sits in
    job_stage: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for f in self.cat.files:
            if f.doc is None or not isinstance(f.doc.data, dict):
                continue
            key = {"job": "job_id", "pipeline": "pipeline_id"}.get(f.kind)
            if key and isinstance(f.doc.data.get(key), str):
                self.ids.setdefault(f.doc.data[key], f.kind)
            if f.kind == "job" and isinstance(f.doc.data.get("job_id"), str):
                stage = f.rel.parts[0] if len(f.rel.parts) > 1 else "other"
                self.job_stage[f.doc.data["job_id"]] = stage

    def traits(self, name: Any) -> CallableTraits | None:
        """The traits of a registered callable (None: unknown, or no registry given)."""
        if self.callables is None or not isinstance(name, str):
            return None
        return self.callables.get(name)


@dataclass(frozen=True)
class Job:
    """One job file's raw YAML, as the job rules read it."""

    ctx: Context
    file: CatalogFile
    data: dict[str, Any]
    steps: list[Any]
    #: the ``extras:`` mapping and the top-level extras, merged as the loaded JobDef merges them
    extras: dict[str, Any]
    #: the first index of each step id
    order: dict[str, int]
    #: the first raw step of each step id
    by_id: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, ctx: Context, f: CatalogFile, data: dict[str, Any]) -> Job:
        steps = data["steps"]
        extras = JobDef.merged_extras(data)
        order: dict[str, int] = {}
        by_id: dict[str, dict[str, Any]] = {}
        for i, step in enumerate(steps):
            sid = step.get("step_id") if isinstance(step, dict) else None
            if isinstance(sid, str) and sid not in order:
                order[sid] = i
                by_id[sid] = step
        return cls(ctx, f, data, steps, extras, order, by_id)

    def at(self, path: YamlPath, code: str, message: str) -> Finding:
        return Finding(self.file, path, code, message)


@dataclass(frozen=True)
class StepParams:
    """One step's params, as the param rules of its op read them."""

    job: Job
    index: int
    params: dict[str, Any]

    @property
    def base(self) -> YamlPath:
        return ("steps", self.index, "params")

    def at(self, sub: YamlPath, code: str, message: str) -> Finding:
        return self.job.at((*self.base, *sub), code, message)


def walk_strings(value: Any, path: YamlPath) -> Iterator[tuple[YamlPath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from walk_strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk_strings(v, (*path, i))


def literal(value: Any) -> str | None:
    """A plain string value (not a reference), else None: references are checked at compile."""
    return value if isinstance(value, str) and not value.startswith("@") else None
