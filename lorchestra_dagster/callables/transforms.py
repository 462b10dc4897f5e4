"""The JSONata transform registry and its iglu schema resolver.

A transform lives at ``<catalog>/transforms/<domain>/<name>/<version>/`` with
``spec.jsonata`` and ``spec.meta.yaml``. Its id is ``<domain>/<name>@<version>``.
Before a transform runs, the sha256 of ``spec.jsonata`` must equal
``checksum.jsonata_sha256``: an edited expression is refused until someone
updates the checksum on purpose, so what ran is always what was reviewed.

Loaded transforms are cached per process by their files' fingerprint (size and
mtime), so the checksum is re-checked whenever a file changes.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from lorchestra_dagster import naming
from lorchestra_dagster.callables.jsonata_engine import (
    DEFAULT_ENGINE,
    EXTENSIONS,
    Expression,
    compile_expression,
)
from lorchestra_dagster.errors import PermanentError

TRANSFORMS_DIR = "transforms"
SCHEMAS_DIR = "schemas"
_IGLU = re.compile(
    r"^iglu:(?P<vendor>[A-Za-z0-9_.-]+)/(?P<name>[A-Za-z0-9_-]+)/jsonschema/"
    r"(?P<version>\d+-\d+-\d+)$"
)
_JSONATA_CODE = re.compile(r"\b([STDU]\d{4})\b")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Checksum(_Model):
    jsonata_sha256: str = Field(
        pattern=r"^(?:[0-9a-f]{64})?$",
        description="sha256 hex of spec.jsonata's bytes; empty: not pinned (a warning)",
    )


class GoldenTest(_Model):
    """One golden pair; the original wrote ``expect``, this project ``expected``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    input: str = Field(description="Path of an input JSON file, relative to the transform folder")
    expected: str = Field(
        validation_alias=AliasChoices("expected", "expect"),
        description="Path of the expected output JSON",
    )


class Extension(_Model):
    """A host function the expression calls (``$html_to_markdown``); ``impl`` is informative."""

    name: str = Field(description="Function name as the expression calls it (no '$')")
    impl: str | None = Field(default=None, description="Where the original implemented it")


class Compat(_Model):
    from_schema_range: str | None = Field(
        default=None, description="Input schema versions this transform accepts"
    )


class Provenance(_Model):
    author: str | None = Field(default=None, description="Who wrote the transform")
    created_utc: str | None = Field(default=None, description="When (ISO-8601)")


class TransformMeta(_Model):
    """``spec.meta.yaml``, the original canonizer's ``TransformMeta`` fields."""

    id: str = Field(pattern=r"^[a-z0-9_]+(/[a-z0-9_]+)?$", description="<domain>/<name>")
    version: str = Field(
        pattern=r"^\d+[.-]\d+[.-]\d+$", description="Version, 1.0.0 or 1-0-0 (the same)"
    )
    engine: Literal["jsonata"] = Field(description="Expression language")
    runtime: Literal["node", "python"] | None = Field(
        default=None,
        description="Engine the original ran it on; here either JSONata engine runs it "
        "(golden tests pass on both)",
    )
    extensions: list[Extension] = Field(default_factory=list, description="Host functions used")
    description: str = Field(default="", description="What the transform does")
    from_schema: str = Field(description="iglu URI the input payload must satisfy")
    to_schema: str = Field(description="iglu URI the output must satisfy")
    spec_path: str = Field(default="spec.jsonata", description="The expression's file")
    checksum: Checksum = Field(description="Pins the expression file")
    compat: Compat | None = Field(default=None, description="Compatibility notes")
    provenance: Provenance | None = Field(default=None, description="Author and date")
    status: Literal["draft", "stable", "deprecated"] = Field(
        default="stable", description="Lifecycle; deprecated transforms still run"
    )
    config_schema: dict[str, Any] | None = Field(
        default=None,
        description="JSON Schema of the config values the expression reads as config.<key> "
        "(checked once per step)",
    )
    tests: list[GoldenTest] = Field(default_factory=list, description="Golden input/expected")

    @property
    def transform_id(self) -> str:
        return naming.transform_id(f"{self.id}@{self.version}")


class RecordError(Exception):
    """One record failed; ``detail`` never contains payload values (PHI)."""

    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(f"{stage}: {detail}")
        self.stage = stage
        self.detail = detail


# ------------------------------------------------------------------ schemas


def schema_path(catalog_dir: Path, iglu_uri: str) -> Path:
    """Resolve an iglu URI to its file.

    ``iglu:vendor/name/jsonschema/1-0-0`` -> ``<catalog>/schemas/vendor/name/jsonschema/1-0-0.json``
    """
    m = _IGLU.match(iglu_uri)
    if not m:
        raise PermanentError(
            f"not an iglu schema URI: {iglu_uri!r} (expected iglu:<vendor>/<name>/jsonschema/1-0-0)"
        )
    return (
        Path(catalog_dir)
        / SCHEMAS_DIR
        / m["vendor"]
        / m["name"]
        / "jsonschema"
        / f"{m['version']}.json"
    )


_SCHEMA_CACHE: dict[tuple[str, int, int], Draft202012Validator] = {}
_LOCK = threading.Lock()


def schema_validator(catalog_dir: Path, iglu_uri: str) -> Draft202012Validator:
    """The compiled validator of an iglu schema (compiled once per file version)."""
    path = schema_path(catalog_dir, iglu_uri)
    if not path.is_file():
        raise PermanentError(f"schema {iglu_uri} not found", file=str(path), code="E_SCHEMA")
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    validator = _SCHEMA_CACHE.get(key)
    if validator is None:
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
            Draft202012Validator.check_schema(schema)
        except Exception as exc:
            raise PermanentError(f"invalid JSON Schema: {exc}", file=str(path)) from exc
        validator = Draft202012Validator(schema)
        with _LOCK:
            _SCHEMA_CACHE[key] = validator
    return validator


def first_error(validator: Draft202012Validator, instance: Any) -> str | None:
    """Where and which rule failed, without the offending value (it may be PHI)."""
    error = next(iter(sorted(validator.iter_errors(instance), key=lambda e: e.path)), None)
    if error is None:
        return None
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
    extra = ""
    if error.validator == "required":
        missing = [r for r in error.validator_value if r not in (error.instance or {})]
        extra = f" {missing}"
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = f" {sorted(k for k in error.instance if k not in allowed)}"
    return f"{where} fails '{error.validator}'{extra}"


# ------------------------------------------------------------------ registry


def _discover(catalog_dir: Path) -> dict[str, Path]:
    root = Path(catalog_dir) / TRANSFORMS_DIR
    out: dict[str, Path] = {}
    if not root.is_dir():
        return out
    for meta in sorted(root.glob("*/*/*/spec.meta.yaml")):
        folder = meta.parent
        rel = folder.relative_to(root).parts
        out[naming.transform_id(f"{rel[0]}/{rel[1]}@{rel[2]}")] = folder
    return out


def transform_ids(catalog_dir: Path | str) -> set[str]:
    """Ids of every transform (``domain/name@version``); ``lorchestra validate`` checks refs."""
    return set(_discover(Path(catalog_dir)))


def transform_dirs(catalog_dir: Path | str) -> dict[str, Path]:
    """Transform id -> folder, for golden tests and tooling."""
    return _discover(Path(catalog_dir))


def load_meta(folder: Path) -> TransformMeta:
    """Parse and validate ``spec.meta.yaml`` of one transform folder."""
    path = folder / "spec.meta.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return TransformMeta.model_validate(data)
    except yaml.YAMLError as exc:
        raise PermanentError(f"invalid YAML: {exc}", file=str(path)) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise PermanentError(
            f"spec.meta.yaml invalid at {loc}: {first['msg']}", file=str(path), code="E_SPEC"
        ) from exc


@dataclass(frozen=True)
class Transform:
    """A loaded, checksum-verified transform with compiled expression and schemas."""

    transform_id: str
    folder: Path
    meta: TransformMeta
    source: str
    engine: str
    input_schema: Draft202012Validator
    output_schema: Draft202012Validator

    @property
    def expression(self) -> Expression:
        """The compiled expression for the calling thread (a cache hit after the first call)."""
        return compile_expression(self.source, self.engine)

    def apply(
        self, payload: Any, *, validate_input: bool = True, validate_output: bool = True
    ) -> Any:
        """Validate, transform, validate. ``None`` means skip. Raises RecordError.

        The original's jobs turn either check off per step (``validate_input: false``)
        where a schema describes a payload, not the row a formation transform reads.
        """
        problem = first_error(self.input_schema, payload) if validate_input else None
        if problem:
            raise RecordError("input_schema", problem)
        try:
            out = self.expression.evaluate(payload)
        except Exception as exc:  # noqa: BLE001 - engines raise ValueError/JException with codes
            m = _JSONATA_CODE.search(str(exc))
            raise RecordError("jsonata", m.group(1) if m else type(exc).__name__) from None
        if out is None:
            return None
        problem = first_error(self.output_schema, out) if validate_output else None
        if problem:
            raise RecordError("output_schema", problem)
        return out


_TRANSFORM_CACHE: dict[tuple, Transform] = {}


def _fingerprint(folder: Path, spec_path: str = "spec.jsonata") -> tuple:
    out = []
    for name in (spec_path, "spec.meta.yaml"):
        p = folder / name
        st = p.stat()
        out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def load_transform(
    catalog_dir: Path | str, transform_id: str, *, engine: str = DEFAULT_ENGINE
) -> Transform:
    """Load a transform by id, verifying its checksum; cached until its files change.

    Raises:
        PermanentError: unknown id, invalid meta, checksum mismatch (naming the
            file), missing schema, or a JSONata syntax error.
    """
    catalog_dir = Path(catalog_dir)
    folders = _discover(catalog_dir)
    transform_id = naming.transform_id(transform_id)
    folder = folders.get(transform_id)
    if folder is None:
        known = ", ".join(sorted(folders)) or "none"
        raise PermanentError(
            f"unknown transform {transform_id!r} (known: {known})", code="E_UNKNOWN_TRANSFORM"
        )
    meta = load_meta(folder)
    jsonata_path = folder / meta.spec_path
    if not jsonata_path.is_file():
        raise PermanentError(f"{meta.spec_path} missing", file=str(jsonata_path))
    key = (str(folder.resolve()), engine, _fingerprint(folder, meta.spec_path))
    cached = _TRANSFORM_CACHE.get(key)
    if cached is not None:
        return cached
    if meta.transform_id != transform_id:
        raise PermanentError(
            f"spec.meta.yaml says {meta.transform_id!r} but the folder is {transform_id!r}",
            file=str(folder / "spec.meta.yaml"),
        )
    source_bytes = jsonata_path.read_bytes()
    actual = hashlib.sha256(source_bytes).hexdigest()
    # An empty pin (the original shipped some) runs unpinned; validate warns about it.
    if meta.checksum.jsonata_sha256 and actual != meta.checksum.jsonata_sha256:
        raise PermanentError(
            f"checksum mismatch: sha256 is {actual} but spec.meta.yaml pins "
            f"{meta.checksum.jsonata_sha256}; refusing to run a modified transform "
            "(review the change, then update checksum.jsonata_sha256)",
            file=str(jsonata_path),
            code="E_CHECKSUM",
        )
    source = source_bytes.decode("utf-8")
    try:
        compile_expression(source, engine)  # syntax errors surface at load, naming the file
    except PermanentError as exc:
        exc.file = str(jsonata_path)
        raise
    transform = Transform(
        transform_id=transform_id,
        folder=folder,
        meta=meta,
        source=source,
        engine=engine,
        input_schema=schema_validator(catalog_dir, meta.from_schema),
        output_schema=schema_validator(catalog_dir, meta.to_schema),
    )
    with _LOCK:
        _TRANSFORM_CACHE[key] = transform
    return transform


def catalog_problems(catalog_dir: Path | str) -> list[dict[str, str]]:
    """Every problem of the transform registry in one pass, for ``lorchestra validate``.

    Checks each transform's meta, checksum, schemas and golden files without
    running anything; returns ``[{"file", "message"}]`` (empty when clean).
    """
    catalog_dir = Path(catalog_dir)
    problems: list[dict[str, str]] = []
    for tid, folder in sorted(_discover(catalog_dir).items()):
        try:
            meta = load_meta(folder)
        except PermanentError as exc:
            problems.append({"file": exc.file or str(folder), "message": exc.message})
            continue
        if meta.transform_id != tid:
            problems.append(
                {
                    "file": str(folder / "spec.meta.yaml"),
                    "message": f"meta says {meta.transform_id!r} but the folder is {tid!r}",
                }
            )
        jsonata_path = folder / meta.spec_path
        if not jsonata_path.is_file():
            problems.append({"file": str(jsonata_path), "message": f"{meta.spec_path} missing"})
        elif not meta.checksum.jsonata_sha256:
            problems.append(
                {
                    "file": str(folder / "spec.meta.yaml"),
                    "severity": "warning",
                    "message": f"{tid}: checksum.jsonata_sha256 is empty, so the transform is "
                    "not pinned: an edit to it runs unreviewed (set it to the file's sha256)",
                }
            )
        elif hashlib.sha256(jsonata_path.read_bytes()).hexdigest() != meta.checksum.jsonata_sha256:
            problems.append(
                {"file": str(jsonata_path), "message": "checksum mismatch with spec.meta.yaml"}
            )
        unknown = [e.name for e in meta.extensions if e.name not in EXTENSIONS]
        if unknown:
            problems.append(
                {
                    "file": str(folder / "spec.meta.yaml"),
                    "message": f"{tid}: extensions {unknown} are not available "
                    f"(known: {', '.join(sorted(EXTENSIONS))})",
                }
            )
        for uri in (meta.from_schema, meta.to_schema):
            try:
                schema_validator(catalog_dir, uri)
            except PermanentError as exc:
                problems.append({"file": exc.file or str(folder), "message": exc.message})
        for test in meta.tests:
            for rel in (test.input, test.expected):
                if not (folder / rel).is_file():
                    problems.append(
                        {"file": str(folder / "spec.meta.yaml"), "message": f"{rel} not found"}
                    )
    return problems
