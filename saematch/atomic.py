"""Atomic file writes: a reader sees the old file or the complete new one, never half of one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


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
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
