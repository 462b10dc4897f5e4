"""Confinement of vault paths: nothing storacle writes may land outside the vault root."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from lorchestra_dagster.errors import PermanentError


def confined(root: Path, rel: str, what: str = "path") -> Path:
    """``root/rel`` after checking it stays inside ``root`` (symlinks resolved).

    Raises:
        PermanentError: absolute paths, ``..`` parts, NUL bytes, or a symlink that
            leads outside the root; the message names the path.
    """

    def bad(reason: str) -> PermanentError:
        return PermanentError(
            f"{what} {rel!r} escapes the vault root ({reason}); use a path relative to it",
            code="path_escape",
        )

    if not isinstance(rel, str) or not rel.strip():
        raise bad("empty")
    if "\x00" in rel:
        raise bad("NUL byte")
    if (
        PurePosixPath(rel).is_absolute()
        or PureWindowsPath(rel).is_absolute()
        or rel.startswith("~")
    ):
        raise bad("absolute")
    parts = rel.replace("\\", "/").split("/")
    if any(p == ".." for p in parts):
        raise bad("'..' component")
    root_real = root.resolve()
    target = (root / rel).resolve()
    if target != root_real and not target.is_relative_to(root_real):
        raise bad("symlink leads outside")
    if target == root_real:
        raise bad("names the root itself")
    return target
