"""Memory budget of a matching: parse it, default it, and say what each solver needs.

Every estimate counts what `match` allocates (the two feature matrices and the solver's
working memory), not the SAEs passed in. The dispatcher picks a path that fits, and a width
that fits no path stops with a MemoryError before anything large is allocated.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)
DEFAULT_SHARE = 0.5  # of the memory available when the matching starts
_UNITS = {"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_bytes(value) -> int:
    """6e9, "6GB", "512 MiB" -> bytes. Raises ValueError naming the value otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(value))
    unit = m.group(2).upper() if m else None
    if not m or unit not in _UNITS or float(m.group(1)) <= 0:
        raise ValueError(
            f"max_memory={value!r} is not a memory size; write e.g. 6GB, 512MiB or 6e9 (bytes)"
        )
    return int(float(m.group(1)) * _UNITS[unit])


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def resolve_budget(max_memory=None) -> int:
    """The budget in bytes: max_memory, or DEFAULT_SHARE of the available memory (logged)."""
    if max_memory is not None:
        return parse_bytes(max_memory)
    avail = available_bytes()
    budget = int(DEFAULT_SHARE * avail) if avail else 8 * 10**9
    log.info(
        "matching.max_memory not set: using %.1f GB (%s)",
        budget / 1e9,
        f"{DEFAULT_SHARE:.0%} of {avail / 1e9:.1f} GB available" if avail else "no /proc/meminfo",
    )
    return budget


def features_bytes(n: int, D: int, itemsize: int = 4) -> int:
    """The two augmented feature matrices (n, D + 2)."""
    return 2 * n * (D + 2) * itemsize


def dense_bytes(n: int, solver: str) -> int:
    """Working memory of the dense solvers: scipy's float64 cost, lapjv's float32 one."""
    return (16 if solver == "scipy" else 8) * n * n + 64 * n


def stored_bytes(n: int) -> int:
    """The quantised certified solver: the 16-bit estimate (n²), its dense rest (≈ n/4 rows,
    float32) and per-row arrays."""
    return 2 * n * n + (n // 4) ** 2 * 4 + 256 * n


def scan_bytes(n: int, block: int) -> int:
    """The streamed solver's (block, n) float32/int32 temporaries of a pass over the bound:
    held by the candidate pass and the proof's scans, free while the rest is solved."""
    return 5 * block * n * 4 + 4 * 4 * block * (n // 3) * 4


def streamed_bytes(n: int, D: int, block: int, k: int = 16, rest_k: int = 64) -> int:
    """The streamed solver: int8 copies of both sides, the scan temporaries (scan_bytes),
    candidate edges and the rest's graph (≈ n/3 rows), per-row arrays."""
    int8 = 2 * n * (D + 8)
    blocks = scan_bytes(n, block)
    edges = (2 * k * n + 2 * rest_k * (n // 3)) * 40
    return int8 + blocks + edges + (n // 3) * (D + 2) * 4 + 512 * n


def too_big(n: int, D: int, need: int, budget: int, what: str) -> MemoryError:
    """The error for a width that fits no path."""
    return MemoryError(
        f"matching {n} features (feature length {D}) needs about {need / 1e9:.2f} GB with "
        f"{what}, above the memory budget of {budget / 1e9:.2f} GB. Raise the budget "
        "(match(..., max_memory='16GB'), config key matching.max_memory) or free memory."
    )
