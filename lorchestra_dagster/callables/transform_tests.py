"""Golden tests of the transform registry: every input/expect pair, on each JSONata engine.

``lorchestra transforms test`` and the test suite both run these, so a pair
that passes in CI passes for a user with the same command. A failure carries
a unified diff of expected and actual output (golden files are fixtures,
never client data).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorchestra_dagster import naming
from lorchestra_dagster.callables.jsonata_engine import ENGINES
from lorchestra_dagster.callables.transforms import (
    RecordError,
    load_meta,
    load_transform,
    transform_dirs,
)
from lorchestra_dagster.errors import LorchestraError, PermanentError


@dataclass
class GoldenResult:
    """One pair on one engine."""

    input: str
    engine: str
    passed: bool
    diff: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "engine": self.engine,
            "passed": self.passed,
            "diff": self.diff,
        }


@dataclass
class TransformResult:
    id: str
    version: str
    tests: list[GoldenResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "tests": [t.as_dict() for t in self.tests]}


def _pretty(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def _diff(expected: Any, actual: Any) -> str:
    return "\n".join(
        difflib.unified_diff(_pretty(expected), _pretty(actual), "expected", "actual", lineterm="")
    )


def run_goldens(
    catalog_dir: Path | str, transform_id: str | None = None, engines: tuple[str, ...] = ENGINES
) -> list[TransformResult]:
    """Run the golden pairs of every transform (or of ``transform_id``) on ``engines``.

    Raises:
        PermanentError: ``transform_id`` names no transform of the catalog.
    """
    dirs = transform_dirs(catalog_dir)
    if transform_id is not None:
        tid = naming.transform_id(transform_id)
        if tid not in dirs:
            known = ", ".join(sorted(dirs)) or "none"
            raise PermanentError(f"unknown transform {transform_id!r} (known: {known})")
        dirs = {tid: dirs[tid]}
    out: list[TransformResult] = []
    for tid, folder in sorted(dirs.items()):
        meta = load_meta(folder)
        res = TransformResult(id=meta.id, version=meta.version)
        for test in meta.tests:
            for engine in engines:
                res.tests.append(_one(catalog_dir, tid, folder, test.input, test.expected, engine))
        out.append(res)
    return out


def _one(
    catalog_dir: Path | str, tid: str, folder: Path, input_rel: str, expect_rel: str, engine: str
) -> GoldenResult:
    try:
        payload = json.loads((folder / input_rel).read_text(encoding="utf-8"))
        expected = json.loads((folder / expect_rel).read_text(encoding="utf-8"))
        actual = load_transform(catalog_dir, tid, engine=engine).apply(payload)
    except (OSError, json.JSONDecodeError) as exc:
        return GoldenResult(input_rel, engine, False, f"cannot read the pair: {exc}")
    except RecordError as exc:
        return GoldenResult(input_rel, engine, False, f"the transform refused the input: {exc}")
    except LorchestraError as exc:
        return GoldenResult(input_rel, engine, False, f"the transform does not load: {exc}")
    if actual == expected:
        return GoldenResult(input_rel, engine, True)
    return GoldenResult(input_rel, engine, False, _diff(expected, actual))


def summary(results: list[TransformResult]) -> dict[str, Any]:
    """The JSON ``lorchestra transforms test --json`` prints."""
    tests = [t for r in results for t in r.tests]
    passed = sum(t.passed for t in tests)
    return {
        "transforms": [r.as_dict() for r in results],
        "passed": passed,
        "failed": len(tests) - passed,
    }
