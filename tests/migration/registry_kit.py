"""A transform registry written the way the original canonizer's is (``TransformMeta``)."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

from lorchestra_dagster.callables.transforms import schema_path

EXPR = '{"contact_id": contactid, "name": firstname & " " & lastname}'
INPUT = {"contactid": "c-1", "firstname": "Ada", "lastname": "Byron"}
EXPECT = {"contact_id": "c-1", "name": "Ada Byron"}


def write_original_transform(
    root: Path,
    *,
    version: str = "2-0-0",
    checksum: str | None = None,
    expect: dict | None = None,
    tests_key: str = "expect",
    extra: str = "",
) -> Path:
    """``transforms/contact/dataverse_to_canonical/<version>/`` with every TransformMeta field."""
    folder = root / "transforms" / "contact" / "dataverse_to_canonical" / version
    (folder / "tests").mkdir(parents=True)
    (folder / "spec.jsonata").write_text(EXPR)
    digest = hashlib.sha256(EXPR.encode()).hexdigest() if checksum is None else checksum
    (folder / "tests" / "input.json").write_text(json.dumps(INPUT))
    (folder / "tests" / "expected.json").write_text(json.dumps(expect or EXPECT))
    (folder / "spec.meta.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: contact/dataverse_to_canonical
            version: {version}
            engine: jsonata
            runtime: node
            extensions: []

            from_schema: iglu:com.microsoft/dataverse_contact/jsonschema/1-0-0
            to_schema: iglu:org.canonical/contact/jsonschema/2-0-0

            spec_path: spec.jsonata

            checksum:
              jsonata_sha256: "{digest}"

            compat:
              from_schema_range: ">=1-0-0 <2-0-0"

            provenance:
              author: "A Clinician <clinic@example.org>"
              created_utc: "2025-12-04T00:00:00+00:00"

            status: stable

            description: >
              Dataverse contact to the canonical contact.

            config_schema:
              properties:
                source_entity: {{type: string}}

            tests:
              - input: tests/input.json
                {tests_key}: tests/expected.json
            """
        )
        + extra
    )
    for uri in (
        "iglu:com.microsoft/dataverse_contact/jsonschema/1-0-0",
        "iglu:org.canonical/contact/jsonschema/2-0-0",
    ):
        path = schema_path(root, uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"type": "object"}))
    return folder
