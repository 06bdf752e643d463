"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

A writer killed mid-write (SIGKILL, the OOM killer, a lost node) leaves its temp file behind.
Temp files are named `.<name>.saematch-<pid>@<host>.<random>.tmp`, so the next write of the
same file removes those of writers that are gone (remove_stale_temps).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

DEAD_WRITER_GRACE_S = 60  # a dead writer's temp file this old is removed (mtime; clock skew)
ANY_TEMP_MAX_AGE_S = 24 * 3600  # any temp file (other hosts', older names) this old is removed
TEMP_NAME = re.compile(r"\..+\.saematch-(?P<pid>\d+)@(?P<host>[^.]+)\.[^.]+\.tmp")


def host_tag() -> str:
    """This machine's name as it appears in temp file names (no dots, no separators)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def _alive(pid: int) -> bool:
    """Whether process pid exists on this machine (another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def is_stale_temp(tmp: Path, now: float | None = None) -> bool:
    """Whether the temp file tmp was left by a writer that is gone: one of this machine's
    whose process has exited (and that is DEAD_WRITER_GRACE_S old), or any older than
    ANY_TEMP_MAX_AGE_S (another machine's on a shared disk, or an older naming)."""
    try:
        age = (time.time() if now is None else now) - tmp.stat().st_mtime
    except FileNotFoundError:
        return False
    m = TEMP_NAME.fullmatch(tmp.name)
    ours = m is not None and m["host"] == host_tag() and int(m["pid"]) != os.getpid()
    if ours and not _alive(int(m["pid"])) and age > DEAD_WRITER_GRACE_S:
        return True
    return age > ANY_TEMP_MAX_AGE_S


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temp files that killed writers of `path` left beside it; returns them."""
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if is_stale_temp(tmp):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def current_umask() -> int:
    """The process umask, read without changing it (Linux /proc; elsewhere set and restore)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def umask_mode(mode: int = 0o666) -> int:
    """`mode` with the user's umask applied: what open() would have created (0o644 for 022)."""
    return mode & ~current_umask()


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[IO], None],
    *,
    text: bool = False,
    newline: str | None = None,
) -> Path:
    """Call `write(f)` on a unique temp file beside `path`, fsync, then os.replace it into place.

    The temp name is unique per call, so concurrent writers (threads, processes) never share it;
    on any failure the temp file is removed and `path` is left as it was. The file gets the
    mode a plain open() would give (0o666 minus the umask), not mkstemp's private 0o600.
    Temp files of `path` that killed writers left are removed first (remove_stale_temps).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    prefix = f".{path.name}.saematch-{os.getpid()}@{host_tag()}."
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        os.chmod(tmp, umask_mode())  # mkstemp makes 0600; collaborators need the umask's mode
        mode = "w" if text else "wb"
        kw = {"encoding": "utf-8", "newline": newline} if text else {}
        with os.fdopen(fd, mode, **kw) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, content: str) -> Path:
    """Atomically write a UTF-8 string to `path`."""
    return atomic_write(path, lambda f: f.write(content), text=True)


def atomic_write_bytes(path: str | os.PathLike, content: bytes) -> Path:
    """Atomically write bytes to `path`."""
    return atomic_write(path, lambda f: f.write(content))


def atomic_build_dir(root: str | os.PathLike, build: Callable[[Path], None]) -> Path:
    """Call `build(tmp)` on a fresh folder beside `root`, then swap it into place as `root`.

    Readers see the old folder or the complete new one; a failed build leaves `root` as it
    was and removes its temp folder. The folder gets the umask's mode (mkdtemp makes 0700;
    caches are shared). An old `root` is renamed aside before it is deleted, so the swap
    itself never sees a half-deleted folder.
    """
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.building-", dir=root.parent))
    try:
        os.chmod(tmp, umask_mode(0o777))
        build(tmp)
        if root.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
            os.replace(root, trash / root.name)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root
