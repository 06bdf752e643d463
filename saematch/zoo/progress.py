"""Progress lines for the zoo build: one per stage (elapsed, ETA) and a few per training loop."""

from __future__ import annotations

import sys
import time


class Progress:
    """Prints `[zoo] ...` lines to stderr with elapsed time and an ETA; silent when disabled.

    Stage weights are the expected fractions of the total build time; the ETA of the whole
    build is elapsed / done_fraction − elapsed.
    """

    def __init__(self, enabled: bool = True, weights: dict[str, float] | None = None) -> None:
        self.enabled = enabled
        self.weights = weights or {}
        self.t0 = time.perf_counter()
        self.done = 0.0  # summed weight of finished stages
        self.stage_name = ""
        self.stage_t0 = self.t0

    def elapsed(self) -> float:
        """Seconds since the build began."""
        return time.perf_counter() - self.t0

    def log(self, msg: str) -> None:
        """Print one line (when enabled)."""
        if self.enabled:
            print(f"[zoo {self.elapsed():6.1f}s] {msg}", file=sys.stderr, flush=True)

    def stage(self, name: str) -> None:
        """Close the current stage and open `name`, printing elapsed time and the build's ETA."""
        if self.stage_name:
            self.done += self.weights.get(self.stage_name, 0.0)
        self.stage_name, self.stage_t0 = name, time.perf_counter()
        eta = ""
        if 0 < self.done < 1:
            eta = f", eta ~{self.elapsed() / self.done - self.elapsed():.0f}s"
        self.log(f"stage {name}{eta}")

    def step(self, what: str, i: int, n: int, extra: str = "", every: int = 0) -> None:
        """A loop line `what i/n` with the loop's own ETA, printed about 5 times per loop."""
        every = every or max(1, n // 5)
        if not self.enabled or (i % every and i != n):
            return
        took = time.perf_counter() - self.stage_t0
        eta = took / max(i, 1) * (n - i)
        self.log(f"  {what} {i}/{n} {extra} (stage {took:.0f}s, eta {eta:.0f}s)")
