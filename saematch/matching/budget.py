"""Memory of a matching: the budget, every byte estimate, and the MemoryError.

One budget per match() call (`Budget`, resolved once from `max_memory`): the two feature
matrices come out of it first, and what is left (`Budget.work`, bytes of working memory) is
what the solver, and after it the analyses, may allocate. Every estimate below counts what
the matching allocates (not the SAEs passed in). A path that does not fit is skipped; a width
that fits no path stops with `too_big`'s MemoryError before anything large is allocated.

Names, one per meaning: `max_memory` is what a user writes (match(), the config key
matching.max_memory); `Budget.total` its value in bytes; `work_bytes` the working memory the
solver and analysis functions are given; the streamed solver splits it into `proof_bytes` and
`rest_bytes` (`streamed_split`). A `work_bytes` of None means "the default budget"
(`resolve_budget(None)`), nowhere "no limit".

This module imports nothing from the package: the solvers and analyses import it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
DEFAULT_SHARE = 0.5  # of the memory available when the matching starts
FALLBACK_BYTES = 8 * 10**9  # the default budget's base where /proc/meminfo is not readable
MAX_STORED_BYTES = 2 * 1024**3  # the 16-bit n×n estimate is stored up to 2 GiB (n ≈ 32k)
EDGE_BYTES = 128  # peak bytes per edge of the streamed proof's graph: arrays, keys, sort, CSR
MAX_EDGES_PER_ROW = 64  # partial matching: denser graphs are solved densely (partial.py)
_UNITS = {"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
RAISE_HINT = (
    "Raise the budget (match(..., max_memory='16GB'), config key matching.max_memory=16GB) "
    "or free memory."
)


# -- the budget ----------------------------------------------------------------------------
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


def default_budget() -> tuple[int, str]:
    """(bytes, where they come from): DEFAULT_SHARE of the memory available now."""
    avail = available_bytes()
    if not avail:
        return FALLBACK_BYTES, f"default {show_bytes(FALLBACK_BYTES)}: no /proc/meminfo"
    budget = int(DEFAULT_SHARE * avail)
    return budget, f"default: {DEFAULT_SHARE:.0%} of {show_bytes(avail)} available"


def resolve_budget(max_memory=None) -> int:
    """The budget in bytes: max_memory, or DEFAULT_SHARE of the available memory (logged)."""
    if max_memory is not None:
        return parse_bytes(max_memory)
    budget, source = default_budget()
    log.info("matching.max_memory not set: using %s (%s)", show_bytes(budget), source)
    return budget


def show_bytes(n: int | float) -> str:
    """A byte count for people: "1.50 GB", "12.0 MB", "300 B" (never "0.00 GB")."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.{2 if unit in ('TB', 'GB') else 1}f} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class Budget:
    """What one match() call may allocate: `total` bytes, of which `features` hold the
    augmented feature matrices; `work` = total − features is the solver's and analyses'."""

    total: int
    features: int
    source: str  # how total was set: "max_memory='6GB'" or "default: 50% of 12.0 GB available"

    @classmethod
    def resolve(cls, max_memory, features: int, what: str = "matching") -> Budget:
        """The budget of one matching; MemoryError when the features alone do not fit (what:
        the matching, for the message, e.g. "matching 300 features (feature length 32)")."""
        if max_memory is None:
            total, source = default_budget()
            log.info("matching.max_memory not set: using %s (%s)", show_bytes(total), source)
        else:
            total, source = parse_bytes(max_memory), f"max_memory={max_memory!r}"
        budget = cls(total, features, source)
        if features >= total:
            raise MemoryError(
                f"{what} needs {show_bytes(features)} for the two feature matrices alone, "
                f"at or above the memory budget of {show_bytes(total)} ({source}), before any "
                f"solver memory. {RAISE_HINT}"
            )
        return budget

    def explain(self, err: MemoryError) -> MemoryError:
        """err (too_big's) with this budget's total, source and features said."""
        msg = str(err).replace(RAISE_HINT, "").rstrip()
        return MemoryError(
            f"{msg} The memory budget is {show_bytes(self.total)} ({self.source}), "
            f"{show_bytes(self.features)} of it for the two feature matrices. {RAISE_HINT}"
        )

    @property
    def work(self) -> int:
        """Bytes left for the solver (then the analyses) once the features are built."""
        return self.total - self.features


def resolve_work(work_bytes: int | None) -> int:
    """work_bytes, or the default budget when None (functions called outside match())."""
    return resolve_budget(None) if work_bytes is None else int(work_bytes)


def too_big(n: int, D: int, need: int, work_bytes: int, what: str) -> MemoryError:
    """The error for a width that fits no path: what was needed, what the budget left, how to
    raise it."""
    return MemoryError(
        f"matching {n} features (length {D}) needs about {show_bytes(need)} of working "
        f"memory with {what}, above the {show_bytes(max(work_bytes, 0))} the memory budget "
        f"leaves once the features are built. {RAISE_HINT}"
    )


def proof_too_big(n: int, edges: int, rows: int) -> MemoryError:
    """The streamed proof's graph has used all the room the budget left it."""
    return MemoryError(
        f"matching {n} features: the proof's graph of {edges:,} exact costs "
        f"(≈ {show_bytes(edges * EDGE_BYTES)}, all the memory budget leaves it) has no room "
        f"for the {rows:,} rows still to prove. {RAISE_HINT}"
    )


def rest_too_big(m: int, need: int, room: int, route: str) -> MemoryError:
    """The streamed solver's rest does not fit what the budget leaves it."""
    return MemoryError(
        f"the streamed solver's rest of {m:,} features without a clear partner needs about "
        f"{show_bytes(need)} on the {route} route, above the {show_bytes(max(room, 0))} the "
        f"memory budget leaves it. {RAISE_HINT}"
    )


# -- the features ---------------------------------------------------------------------------
def features_bytes(n: int, D: int, itemsize: int = 4) -> int:
    """The two augmented feature matrices (n, D + 2) (cost.py)."""
    return 2 * n * (D + 2) * itemsize


# -- the bijection's solvers (solvers/) -----------------------------------------------------
def dense_bytes(n: int, solver: str) -> int:
    """Working memory of the dense solvers: scipy's float64 cost, lapjv's float32 one."""
    return (16 if solver == "scipy" else 8) * n * n + 64 * n


def estimate_bytes(n_a: int, n_b: int) -> int:
    """The stored 16-bit estimate of every cost (quantised.py); capped by MAX_STORED_BYTES."""
    return 2 * n_a * n_b


def stored_bytes(n: int, pad: int = 0) -> int:
    """The stored certified solver (solvers/stored.py): the 16-bit estimate (n²), its dense
    rest (≈ n/4 rows, float32; `pad` zero-cost padding rows or columns, compare/rect.py's
    dummies, all join it) and per-row arrays. The solver checks its real rest against its
    budget before building it (guess.rest_fits)."""
    return estimate_bytes(n, n) + (pad + (n - pad) // 4) ** 2 * 4 + 256 * n


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


def dense_rest_bytes(m: int) -> int:
    """The streamed solver's dense rest (rest.py): the float32 sub-cost of its m rows and
    columns and its column slices (lapjvs copies nothing)."""
    return int(1.25 * 4 * m * m)


def sparse_rest_bytes(m: int, K: int) -> int:
    """The sparse rest's first graph: each of its m rows' and columns' K pairs and, where they
    hold no perfect matching, a random one, at EDGE_BYTES an edge. It joins the proof's
    graph, so it is held to half of proof_bytes."""
    return (2 * K + 1) * m * EDGE_BYTES


def rest_reservoir(m: int, n: int, block: int, most: int) -> int:
    """The sparse rest's reservoir T (≤ most pairs per row, ≥ 1): its m × T columns and float32
    costs (12 bytes a pair) and the pricing's (block, m) float32 products, key and top-T
    within the scan temporaries (scan_bytes(n, block // 4)), free while the rest is solved."""
    room = scan_bytes(n, max(block // 4, 1)) - 3 * 4 * block * m
    return int(max(1, min(most, room // (12 * max(m, 1)))))


def streamed_split(n: int, D: int, block: int, work_bytes: int) -> tuple[int, int]:
    """(proof_bytes, rest_bytes): what the work budget leaves beyond the streamed pass. The
    proof's graph grows into proof_bytes; the rest's dense sub-cost may use rest_bytes (that
    and the scan temporaries, not held while the rest is solved)."""
    proof_bytes = work_bytes - streamed_bytes(n, D, block)
    return proof_bytes, proof_bytes + scan_bytes(n, block)


# -- the streamed solver on a GPU (matching.device=cuda) ----------------------------------
def streamed_gpu_bytes(
    n: int, D: int, block: int, k: int = 16, rest_k: int = 64, gemm: str = "int8"
) -> int:
    """GPU memory of the streamed solver on a GPU (blocks.py, candidates.py, streamed.py),
    features excluded (they stay on the host, moved in row blocks):

    * both sides' int8 copies, widths padded to 8 (n + 8 rows: B is padded to a multiple of 8)
      and ~16 float32 per-row terms of the bound per side; float32 copies with gemm="fp32"
      (gemm.py: a GPU runs int8 unless told otherwise);
    * the (block, n) temporaries of a pass: int32 products, the float32 bound, its transposed
      view sorted for the columns' top-k, masks (6 arrays of 4 bytes, counted generously: the
      caching allocator rounds blocks up);
    * the columns' top-(k+1) pool (values, rows) and its merge copy, and top-2 (n × 4 × 12);
    * the rest's guess: B's rest rows (≈ n/3, float32), a (4·block, n/3) sub-cost block with
      its top rest_k, and the rest's column pool of rest_k + 1;
    * quantising: a chunk of ≤ 4,096 float32 rows and its ~5 temporaries (0.23 GB at D 2304).

    At n = 2^20, D = 2304, block 256: 5.0 + 6.4 + 0.5 + 8.1 + 0.2 ≈ 20 GB (an H100 has 80)."""
    int8 = 2 * (n + 8) * (-(-D // 8) * 8) * (1 if gemm == "int8" else 4) + 2 * n * 16 * 4
    blocks = 6 * block * n * 4
    pool = 2 * n * (k + 1) * 12 + n * 4 * 12
    m = n // 3
    rest = m * (D + 2) * 4 + 4 * block * m * 4 * 3 + 2 * m * (rest_k + 1) * 12
    quantise = 6 * min(n, 4096) * (D + 2) * 4
    return int8 + blocks + pool + rest + quantise


def gpu_too_big(n: int, D: int, need: int, free: int, block: int) -> MemoryError:
    """The error for a width whose streamed solve does not fit the GPU's free memory."""
    return MemoryError(
        f"matching {n} features (length {D}) on the GPU needs about {show_bytes(need)} of GPU "
        f"memory in row blocks of {block} (int8 copies of both sides, the blocks, the rest's "
        f"rows), above the {show_bytes(max(free, 0))} free on it. Free GPU memory (other "
        "processes, tensors you hold) or match on the CPU (matching.device=cpu)."
    )


# -- the analyses beyond the bijection (beyond/) --------------------------------------------
def edge_bytes(n: int) -> int:
    """Partial matching's candidate buffers (≤ MAX_EDGES_PER_ROW·n pairs: rows, columns,
    costs, mask) and the reject-padded sparse graph (2e + 2n entries: value, two indices)."""
    e = MAX_EDGES_PER_ROW * n
    return e * 40 + (2 * e + 2 * n) * 40


def bound_bytes(n: int, D: int, workers: int, block: int = 128) -> int:
    """Partial matching's int8 route (quantised.py): 16-bit estimate (2n²), int8 copy of side
    b, per worker int32 products (≤ 3 parts × block × n) and top-2 arrays, per-row norms;
    then the edges."""
    per_worker = 3 * block * n * 4 + block * D + 4 * n + 48 * n
    return estimate_bytes(n, n) + n * D + workers * per_worker + 200 * n + edge_bytes(n)


def partial_pass_bytes(n: int, block: int, n_cols: int | None = None) -> int:
    """Partial matching's float32 route (n rows, n_cols columns, default n): one (block,
    n_cols) float32 cost block, scan buffers, norms, the edges."""
    n_cols = n if n_cols is None else n_cols
    return block * n_cols * 4 + (4 * block + 1024) * 16 * 4 + 8 * (n + n_cols) + edge_bytes(n)


def dense_clamped_bytes(n: int) -> int:
    """Partial matching's dense route: the clamped float32 cost (n × n) and either lapjvs'
    float32 working copy or, where lapjvs stops a rounding step short, scipy's float64 copy
    (the larger: 12 n² in all)."""
    return 12 * n * n + 64 * n


def screen_bytes(n: int, D: int, block: int, workers: int, screen: int, fp32=False) -> int:
    """The confidence screen (screen.py): int8 copies (A, B, B permuted), or with fp32 none
    (the features read in place, B's rows gathered per block: 2 blocks of float32 rows per
    worker); per worker two blocks of int32 / float32 products (≤ 2 parts, and torch's
    output), heaps, the candidates' exact costs."""
    heaps = workers * n * (screen * 16 + (10 + screen) * 16 + (2 + screen) * 16 + 32)
    copies = workers * 2 * block * D * 4 if fp32 else 3 * n * D
    return copies + workers * 4 * 2 * block * block * 4 + heaps + 400 * n


def confidence_pass_bytes(n: int, D: int, block: int) -> int:
    """confidence.py's float32 pass: its diagonal blocks (n × block) and two more blocks."""
    return n * block * 4 + 2 * block * block * 4 + 200 * n
