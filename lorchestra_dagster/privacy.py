"""Owner-only files and folders: clinical data never readable by other local users."""

from __future__ import annotations

import os
from pathlib import Path


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) and make it 0700."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def private_file(path: str | Path) -> Path:
    """Make an existing file 0600."""
    path = Path(path)
    os.chmod(path, 0o600)
    return path
