"""How much of a catalog written for the original lorchestra loads here, file by file.

Usage: ``.venv/bin/python scripts/migration_report.py DIR [--json]``

Point it at a copy of the original's ``jobs/definitions`` folder (or any
catalog). Every job and pipeline file is counted as *clean* (no error issue
in it), *failing* (its issues are listed by code) or *not loaded* (the file
is not recognised as a job or pipeline at all). The figure is what a user
moving from the original sees on day one; docs/migration.md quotes it.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def report(root: Path) -> dict[str, object]:
    """Counts of clean and failing job/pipeline files under ``root``, with issue codes."""
    from lorchestra_dagster.catalog_service import load_report

    rep = load_report(root)
    files = [f for f in rep.catalog.files if f.kind in ("job", "pipeline", "broken")]
    errors: dict[str, list[str]] = {}
    for issue in rep.errors:
        errors.setdefault(issue.path, []).append(f"{issue.code} {issue.message}")
    failing = {str(f.rel): errors[str(f.path)] for f in files if str(f.path) in errors}
    codes = Counter(line.split()[0] for lines in failing.values() for line in lines)
    return {
        "catalog": str(root),
        "files": len(files),
        "clean": len(files) - len(failing),
        "failing": len(failing),
        "codes": dict(sorted(codes.items())),
        "failures": dict(sorted(failing.items())),
        "other_errors": sum(
            len(v) for k, v in errors.items() if k not in {str(f.path) for f in files}
        ),
    }


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    out = report(Path(argv[0]))
    if "--json" in argv:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{out['clean']} of {out['files']} job/pipeline files validate clean")
    for rel, lines in out["failures"].items():  # type: ignore[union-attr]
        print(f"  {rel}")
        for line in lines:
            print(f"    {line}")
    print(f"codes: {out['codes']}; errors in other files: {out['other_errors']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
