"""Start local-bigquery offline: extensions from PyPI wheels, never downloaded.

Runs inside ``.venv-bqemu`` (Python 3.13), never inside the project venv. The
emulator opens DuckDB connections in several places (its catalog, a scratch
connection per project's DuckLake file) and needs the ducklake, icu, spatial
and avro extensions. DuckDB would download those on first use; here they come
from the ``duckdb-extension-*`` wheels instead. This launcher links the wheels'
binaries into one extension directory and wraps ``duckdb.connect`` so that every
connection looks there and never auto-installs, so a missing extension fails
loudly instead of reaching for the network.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import duckdb

EXTENSIONS = ("ducklake", "icu", "spatial", "avro")
_connect = duckdb.connect


def _extension_dir() -> Path:
    """Link each wheel's extension binary into ``<venv>/duckdb-ext/v<ver>/<platform>/``."""
    version = f"v{duckdb.__version__}"
    with _connect() as con:
        platform = con.execute("SELECT platform FROM pragma_platform()").fetchone()[0]
    root = Path(sys.prefix) / "duckdb-ext"
    target = root / version / platform
    target.mkdir(parents=True, exist_ok=True)
    for name in EXTENSIONS:
        package = importlib.import_module(f"duckdb_extension_{name}")
        source = Path(package.__file__).parent / "extensions" / version / f"{name}.duckdb_extension"
        if not source.is_file():
            raise SystemExit(f"bqemu: missing {source}; run scripts/bqemu.sh setup")
        link = target / source.name
        if not link.exists():
            link.symlink_to(source)
    return root


EXTENSION_DIR = str(_extension_dir())


def _offline_connect(database=":memory:", read_only=False, config=None, **kwargs):
    """``duckdb.connect`` that loads extensions from the wheels and never downloads."""
    config = dict(config or {})
    config["autoinstall_known_extensions"] = False
    config["autoload_known_extensions"] = True
    config["extension_directory"] = EXTENSION_DIR
    return _connect(database, read_only=read_only, config=config, **kwargs)


duckdb.connect = _offline_connect


def main() -> None:
    from local_bigquery.cli import main as cli_main

    cli_main(sys.argv[1:])


if __name__ == "__main__":
    main()
