"""File locks that say when they wait: a run blocked by another process's cache lock prints one
line naming the lock, instead of sitting silent until the other process is done."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

QUIET_WAIT_S = 1.0  # a lock free within this is taken without a word


@contextmanager
def cache_lock(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold the file lock at `path` (`what` it guards, for the message); when another process
    holds it, print one line to stderr naming the lock, then wait for it."""
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=QUIET_WAIT_S)
    except Timeout:
        print(
            f"waiting for the lock {path} ({what}): another process holds it and is building "
            "the same thing; this run goes on when it is done",
            file=sys.stderr,
            flush=True,
        )
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
