"""IO managers: encrypted intermediates between ops, and the storacle submit for assets.

Intermediate step outputs (queried rows, transformed items, built plans) carry
client emails and notes. Dagster's default IO manager pickles them in clear
under ``DAGSTER_HOME`` whenever steps run in separate processes, which is the
normal case (multiprocess executor, runs launched from the UI or the daemon).
``EncryptedIOManager`` keeps that design (so independent assets still run in
parallel, one process each) but writes Fernet ciphertext only: AES-128-CBC with
an HMAC, key from ``LORCHESTRA_INTERMEDIATE_KEY`` or a 0600 key file under
``LORCHESTRA_HOME/keys``. The files of a run are removed when it succeeds.

``StoracleIOManager`` is where ``storacle.submit`` happens: an asset's output
is its plan; ``handle_output`` submits it through the engine's own submit
handler (no second implementation), fails on any error op, and records counts
as metadata. ``load_input`` hands downstream assets a reference (tables and
filters), never rows.
"""

from __future__ import annotations

import os
import pickle
import shutil
import time
from pathlib import Path
from typing import Any

import dagster as dg
from cryptography.fernet import Fernet, InvalidToken
from pydantic import Field

from lorchestra_dagster.defs.resources import StoracleResource
from lorchestra_dagster.engine.handlers import run_step
from lorchestra_dagster.engine.state import RunState
from lorchestra_dagster.errors import LorchestraError, PermanentError
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.spec.instance import ResolvedStep

KEY_ENV = "LORCHESTRA_INTERMEDIATE_KEY"
INTERMEDIATE_DIR = "lorchestra_intermediate"
#: Marks an asset output for the storacle IO manager (see ``graphs.py``).
ASSET_OUTPUT = "lorchestra.asset_output/1"


def key_file(home: Path) -> Path:
    return home / "keys" / "intermediate.key"


def load_or_create_key(home: Path, env: dict[str, str] | None = None) -> bytes:
    """The Fernet key: from the environment, else a 0600 file created once under ``home``."""
    env = dict(os.environ) if env is None else env
    if env.get(KEY_ENV):
        return env[KEY_ENV].encode("ascii")
    path = key_file(home)
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


class EncryptedIOManager(dg.ConfigurableIOManager):
    """Pickles op outputs, encrypted with Fernet, under ``DAGSTER_HOME/storage``."""

    base_dir: str | None = Field(
        default=None, description="Where ciphertext goes (default: the instance's storage dir)"
    )
    key: str | None = Field(
        default=None, description="Fernet key (LORCHESTRA_INTERMEDIATE_KEY); else a key file"
    )
    home: str | None = Field(default=None, description="LORCHESTRA_HOME holding keys/")

    def _fernet(self) -> Fernet:
        if self.key:
            return Fernet(self.key.encode("ascii"))
        home = Path(self.home) if self.home else Settings.from_env().home
        return Fernet(load_or_create_key(home))

    def _root(self, context: dg.OutputContext | dg.InputContext) -> Path:
        if self.base_dir:
            return Path(self.base_dir)
        return Path(context.step_context.instance.storage_directory()) / INTERMEDIATE_DIR

    def _path(self, root: Path, identifier: list[str]) -> Path:
        return root.joinpath(*identifier).with_suffix(".fernet")

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        path = self._path(self._root(context), list(context.get_identifier()))
        path.parent.mkdir(parents=True, exist_ok=True)
        token = self._fernet().encrypt(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(token)
        os.replace(tmp, path)
        context.add_output_metadata({"encrypted_bytes": len(token)})

    def load_input(self, context: dg.InputContext) -> Any:
        upstream = context.upstream_output
        if upstream is None:
            raise PermanentError(f"input {context.name!r} has no upstream output to load")
        path = self._path(self._root(context), list(upstream.get_identifier()))
        try:
            token = path.read_bytes()
        except FileNotFoundError:
            raise PermanentError(
                f"intermediate output of step {upstream.step_key!r} is gone "
                "(re-run the whole asset rather than one step)"
            ) from None
        try:
            data = self._fernet().decrypt(token)
        except InvalidToken:
            raise PermanentError(
                f"intermediate output of step {upstream.step_key!r} does not decrypt with "
                f"this key ({KEY_ENV} or LORCHESTRA_HOME/keys/intermediate.key changed?)"
            ) from None
        return pickle.loads(data)  # noqa: S301 - authenticated by Fernet: only we wrote it


def remove_run_intermediates(storage_dir: str | Path, run_id: str) -> bool:
    """Delete a finished run's ciphertext; True when something was removed."""
    path = Path(storage_dir) / INTERMEDIATE_DIR / run_id
    if path.is_dir():
        shutil.rmtree(path)
        return True
    return False


def asset_output(kind: str, job_id: str, step_id: str, **fields: Any) -> dict[str, Any]:
    """The object an asset's terminal op returns to ``StoracleIOManager``."""
    return {
        "lorchestra": ASSET_OUTPUT,
        "kind": kind,
        "job_id": job_id,
        "step_id": step_id,
        **fields,
    }


def _meta_value(value: Any) -> Any:
    if isinstance(value, dg.MetadataValue):
        return value.value
    return value


class StoracleIOManager(dg.ConfigurableIOManager):
    """Submits an asset's plan through the storacle client; loads references, not rows."""

    storacle: StoracleResource = Field(description="The data plane")

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if not isinstance(obj, dict) or obj.get("lorchestra") != ASSET_OUTPUT:
            raise PermanentError(
                f"asset {context.asset_key.to_user_string()} returned something other than a "
                "lorchestra asset output (a plan or a step result)"
            )
        meta = {k: _meta_value(v) for k, v in (context.definition_metadata or {}).items()}
        tables = [t["table_name"] for t in meta.get("lorchestra/writes") or []]
        out: dict[str, Any] = {
            "lorchestra/job_id": obj["job_id"],
            "lorchestra/spec_hash": meta.get("lorchestra/spec_hash", ""),
        }
        if len(tables) == 1:
            out["dagster/table_name"] = tables[0]
        if obj["kind"] == "plan":
            out.update(self._submit(context, obj))
        else:
            out["result"] = dg.MetadataValue.json(obj.get("summary") or {})
        context.add_output_metadata(out)

    def _submit(self, context: dg.OutputContext, obj: dict[str, Any]) -> dict[str, Any]:
        services = self.storacle.services()
        dry_run = bool(obj.get("dry_run"))  # from the run's envelope, set by the op
        state = RunState(
            run_id=context.run_id,
            job_id=obj["job_id"],
            envelope={"job_id": obj["job_id"], "dry_run": dry_run},
            dry_run=dry_run,
        )
        step = ResolvedStep(step_id=obj["step_id"], op="storacle.submit", params={})
        started = time.monotonic()
        try:
            output = run_step(step, {"plan": obj["plan"]}, state, services)
        except LorchestraError as exc:
            if exc.classification == "transient":
                raise
            raise dg.Failure(
                description=f"{obj['job_id']}/{obj['step_id']}: submit failed: {exc}",
                metadata={k: str(v) for k, v in exc.to_dict().items()},
                allow_retries=False,
            ) from exc
        result = output["result"]
        plan_ids = result.get("plan_ids") or []
        return {
            "dagster/row_count": int(result.get("rows") or 0),
            "rows_inserted": int(result.get("inserted") or 0),
            "rows_updated": int(result.get("updated") or 0),
            "rows_unchanged": int(result.get("unchanged") or 0),
            "rows_deleted": int(result.get("deleted") or 0),
            "plan_id": plan_ids[0] if len(plan_ids) == 1 else ",".join(p[:12] for p in plan_ids),
            "plans": len(plan_ids),
            "dry_run": dry_run,
            "submit_duration_s": round(time.monotonic() - started, 4),
        }

    def load_input(self, context: dg.InputContext) -> dict[str, Any]:
        upstream = context.upstream_output
        meta = {}
        if upstream is not None:
            meta = {k: _meta_value(v) for k, v in (upstream.definition_metadata or {}).items()}
        key = context.asset_key.path if context.has_asset_key else []
        return {"asset_key": list(key), "writes": list(meta.get("lorchestra/writes") or [])}
