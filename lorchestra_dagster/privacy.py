"""Owner-only files and folders: clinical data never readable by other local users.

Everything under ``LORCHESTRA_HOME`` is clinical data or leads to it: the
warehouse, the vault (folders named after clients), Dagster's run and event
storage, logs and the storacle token. Two mechanisms, one rule (files 0600,
folders 0700):

* :func:`secure_home` sets the process umask to ``077`` before anything is
  created. It is the only lever on files that libraries create themselves
  (DuckDB's ``.wal``, SQLite's journals, Dagster's ``runs.db``, ``history/``,
  ``schedules/``, logs), whatever the umask the user's shell had. A process
  that uses a home calls it first: the storacle service, the Dagster instance,
  the code location and ``scripts/ui.sh`` (which sets the same umask before it starts
  the webserver and the daemon, so they inherit it).
* :func:`private_dir` and :func:`private_file` set the modes explicitly where
  we create things, so a library caller that never went through
  :func:`secure_home` still gets private files.

A home created by an older version, or copied with loose modes, is tightened
the first time a process uses it: every folder 0700, every file 0600.
Symbolic links are left alone and not followed: their targets are outside the
home's control.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path

#: Umask of a process that uses a home: no group or other bits on anything it creates.
PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600

_secured: set[str] = set()
_lock = threading.Lock()


def private_dir(path: str | Path) -> Path:
    """Create ``path`` and any missing parents as 0700, and make ``path`` itself 0700.

    Existing parents keep their modes (they may be ``/tmp`` or the user's home);
    only folders this call creates are set, whatever the umask.
    """
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass  # created by a concurrent writer; its mode is set just below
        os.chmod(folder, DIR_MODE)
    if not missing:
        os.chmod(path, DIR_MODE)
    return path


def private_file(path: str | Path) -> Path:
    """Make an existing file 0600."""
    path = Path(path)
    os.chmod(path, FILE_MODE)
    return path


#: Prefix of a file being written; a start-up sweep removes orphans a crash left behind.
TMP_PREFIX = ".tmp-"


def write_private(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically as 0600, creating missing folders as 0700.

    The bytes go to a ``.tmp-<pid>-*`` sibling first, are fsynced and renamed over the
    target, so a reader (or a crash) sees the old file or the new one, never half of it.
    """
    target = Path(path)
    private_dir(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def tighten(root: str | Path) -> int:
    """Make every folder under ``root`` (itself included) 0700 and every file 0600.

    Returns how many entries changed mode. Symbolic links are neither changed nor
    followed.
    """
    changed = 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name, mode in [(folder, DIR_MODE)] + [
            (os.path.join(folder, f), FILE_MODE) for f in files
        ]:
            st = os.lstat(name)
            if stat.S_ISLNK(st.st_mode):
                continue
            if stat.S_IMODE(st.st_mode) != mode:
                os.chmod(name, mode)
                changed += 1
        # os.walk lists symlinked folders among dirs but does not descend into them.
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
    return changed


def secure_home(home: str | Path) -> Path:
    """Make this process create private files, create ``home`` 0700, tighten what is there.

    Call it before the first file of a home is created. The umask is set on every
    call (cheap, and a library may have changed it); the walk that tightens an
    existing tree runs once per home and process.
    """
    os.umask(PRIVATE_UMASK)
    home = Path(home).absolute()
    key = str(home)
    with _lock:
        if key in _secured and home.is_dir():
            return home
        private_dir(home)
        tighten(home)
        _secured.add(key)
    return home
