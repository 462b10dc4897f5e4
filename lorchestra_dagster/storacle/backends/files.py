"""``file.write``: files under the vault root, written atomically and only when changed.

All ops of a plan are checked and staged as temp files first; the renames come
last, so a bad path or undecodable content leaves every file as it was.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lorchestra_dagster.errors import LorchestraError, PermanentError, TransientError
from lorchestra_dagster.storacle.backends.base import OpFailure, write_result
from lorchestra_dagster.storacle.backends.paths import confined
from lorchestra_dagster.storacle.params import FileWriteParams


class FilesBackend:
    """Writes files below ``root`` (the vault directory)."""

    name = "files"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def execute(self, ops: list[dict[str, Any]], *, dry_run: bool) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        pending: dict[Path, bytes] = {}
        order: list[Path] = []
        for index, op in enumerate(ops):
            try:
                target, data = self._prepare(op)
            except LorchestraError as err:
                raise OpFailure(index, err) from err
            result = write_result("file.write", None, None, 1)
            result["path"] = op["params"]["path"]
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
            results.append(result)
        if not dry_run:
            self._commit(pending, order, ops)
        return results

    def _prepare(self, op: dict[str, Any]) -> tuple[Path, bytes]:
        try:
            p = FileWriteParams.model_validate(op["params"])
        except ValidationError as err:
            raise PermanentError(f"file.write: invalid params: {err.errors()[0]['msg']}") from err
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

    def _commit(self, pending: dict[Path, bytes], order: list[Path], ops: list[dict]) -> None:
        staged: list[tuple[str, Path]] = []
        try:
            for target in order:
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(pending[target])
                    fh.flush()
                    os.fsync(fh.fileno())
                staged.append((tmp, target))
        except OSError as err:
            for tmp, _ in staged:
                Path(tmp).unlink(missing_ok=True)
            raise OpFailure(
                len(staged), TransientError(f"file.write: cannot stage a file: {err.strerror}")
            ) from err
        for tmp, target in staged:
            os.replace(tmp, target)
