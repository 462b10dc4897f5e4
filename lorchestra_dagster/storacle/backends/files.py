"""``file.write``: files under the vault root, written atomically and only when changed.

All ops of a plan are checked first, so a bad path or undecodable content leaves
every file as it was. Then each file is written to a temp file beside it and
renamed over the target at once: at most one temp file exists at any moment,
and a crash leaves a file either old or new, never half written. A temp file is
named ``.tmp-<pid>-...``; one whose process is gone is an orphan of a crash and
is removed when a backend for the vault starts (``sweep_orphans``). A rerun of
the plan writes what the crash did not reach and skips what is unchanged.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lorchestra_dagster.errors import LorchestraError, PermanentError, TransientError
from lorchestra_dagster.privacy import TMP_PREFIX, write_private
from lorchestra_dagster.storacle.backends.base import Op, OpFailure, write_result
from lorchestra_dagster.storacle.backends.paths import confined
from lorchestra_dagster.storacle.params import FileWriteParams

log = logging.getLogger(__name__)
_TMP_PID = re.compile(r"^\.tmp-(\d+)-")
#: A temp file without a pid in its name (older versions) is stale after this long.
_STALE_S = 3600.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, and not ours to judge
        return True
    return True


def sweep_orphans(root: Path) -> int:
    """Remove temp files that crashed writers left under ``root``; how many were removed."""
    if not root.is_dir():
        return 0
    removed = 0
    now = time.time()
    for path in root.rglob(f"{TMP_PREFIX}*"):
        match = _TMP_PID.match(path.name)
        try:
            if match:
                stale = int(match.group(1)) != os.getpid() and not _alive(int(match.group(1)))
            else:
                stale = now - path.stat().st_mtime > _STALE_S
            if stale and path.is_file():
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # its writer renamed it meanwhile
    if removed:
        log.warning("vault: removed %d orphan temp file(s) of interrupted writes", removed)
    return removed


class FilesBackend:
    """Writes files below ``root`` (the vault directory)."""

    name = "files"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        sweep_orphans(self.root)

    def execute(self, ops: Sequence[Op], *, dry_run: bool) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        pending: dict[Path, bytes] = {}
        order: list[Path] = []
        op_of: dict[Path, int] = {}
        for index, op in enumerate(ops):
            p = op.params
            try:
                if not isinstance(p, FileWriteParams):
                    raise PermanentError(f"method {op.method} is not a file method")
                target, data = self._prepare(p)
            except LorchestraError as err:
                raise OpFailure(index, err) from err
            result = write_result(FileWriteParams.method, None, None, 1)
            result["path"] = p.path
            result["bytes"] = len(data)
            before = pending.get(target)
            if before is None and target.is_file():
                before = target.read_bytes()
            if before is None:
                result["inserted"] = 1
            elif before == data:
                result["unchanged"] = 1
            else:
                result["updated"] = 1
            if before != data:
                if target not in pending:
                    order.append(target)
                pending[target] = data
                op_of[target] = index
            results.append(result)
        if not dry_run:
            self._commit(pending, order, op_of)
        return results

    def _prepare(self, p: FileWriteParams) -> tuple[Path, bytes]:
        target = confined(self.root, p.path, "file.write path")
        if target.is_dir():
            raise PermanentError(f"file.write path {p.path!r} is a directory", code="path_is_dir")
        if p.encoding == "base64":
            try:
                return target, base64.b64decode(p.content, validate=True)
            except (binascii.Error, ValueError) as err:
                raise PermanentError(
                    f"file.write {p.path!r}: content is not valid base64", code="bad_content"
                ) from err
        return target, p.content.encode("utf-8")

    def _commit(
        self, pending: dict[Path, bytes], order: list[Path], op_of: dict[Path, int]
    ) -> None:
        for index, target in enumerate(order):
            try:
                # client folders carry names: never world-listable (0700), files 0600
                write_private(target, pending[target])
            except OSError as err:
                raise OpFailure(
                    op_of[target],
                    TransientError(
                        f"file.write: cannot write a file ({err.strerror}); "
                        f"{index} of {len(order)} written, rerun the plan to finish",
                        code="vault_io",
                    ),
                ) from err
