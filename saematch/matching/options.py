"""The options of a matching and their defaults: the one place that owns them.

`MatchOptions()` holds every default of match(), match_beyond(), match_layers() and the
config (conf/matching/folded.yaml and experiments' schema take the same values; a test checks
that they agree). The functions' signatures read their defaults from `DEFAULTS`, so a default
changed here changes everywhere at once.

The defaults are the default run's: the paper's matching (fold θ, mode both, the bijection,
no b_enc term), then the analyses it records in its match files (confidence, top-5
predecessors, splits). Turn the analyses off with confidence=False, top_k=0, splits=False.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

from saematch.matching.beyond.null import NULL_ALPHA
from saematch.matching.cost import check_bias_weight, check_mode
from saematch.matching.solvers.gemm import check_bound_gemm

UNMATCHED_HELP = (
    "matching.unmatched must be none, auto, or a number ≥ 0 (the relative reject cost ρ)"
)


def parse_unmatched(value) -> float | str | None:
    """None | "auto" | ρ ≥ 0 from a config value ("none", "auto", a number or numeric text)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
        return None
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, bool):
        raise ValueError(f"{UNMATCHED_HELP}; got {value!r}")
    try:
        rho = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{UNMATCHED_HELP}; got {value!r}") from None
    if not math.isfinite(rho) or rho < 0:
        raise ValueError(f"{UNMATCHED_HELP}; got {value!r}")
    return rho


def check_top_k(top_k) -> int:
    """top_k as an int ≥ 0; ValueError for anything else (-1, 1.5, "5", True)."""
    ok = isinstance(top_k, numbers.Integral) and not isinstance(top_k, bool) and top_k >= 0
    if not ok:
        raise ValueError(
            f"matching.top_k must be a whole number ≥ 0 (predecessors kept per feature; "
            f"0 = none), got {top_k!r}"
        )
    return int(top_k)


@dataclasses.dataclass(frozen=True)
class MatchOptions:
    """What a matching computes, and how (module doc). Checked on construction.

    What (in the match-cache key): mode, fold, bias_weight, solver, unmatched, confidence,
    top_k, splits, null_alpha, seed. How (not in the key; same result): max_memory, device,
    bound_gemm (the certified solvers prove the same exact optimum with either bound; the
    analyses' proven brackets hold with either, docs/method.md §13).
    """

    mode: str = "both"  # encoder | decoder | both (the paper's: decoder + encoder MSE)
    fold: bool = True  # fold θ into the weights first (paper eq. 4)
    bias_weight: float = 0.0  # > 0 adds w·(Δb_enc)² to mode both: a departure from the paper
    solver: Any = "auto"  # auto | lapjv | scipy, or a Solver object (solvers/)
    unmatched: float | str | None = None  # None: the bijection; ρ ≥ 0 or "auto": partial
    confidence: bool = True  # swap regret per matched pair (beyond/confidence.py)
    top_k: int = 5  # cheapest predecessors kept per feature of b (0: none)
    splits: bool = True  # split detector (beyond/splits.py)
    null_alpha: float = NULL_ALPHA  # quantile of the rotation null behind unmatched="auto", splits
    seed: int = 0  # seed of the rotation null
    max_memory: int | float | str | None = None  # "6GB", bytes; None: half the available
    device: str = "auto"  # auto | cpu | cuda: where solver=auto's cost blocks run
    bound_gemm: str = "auto"  # auto | int8 | fp32: the GEMM of solver=auto's bound (gemm.py)

    def __post_init__(self) -> None:
        check_mode(self.mode)
        check_bound_gemm(self.bound_gemm)
        set_ = object.__setattr__  # frozen: normalise in place once
        set_(self, "bias_weight", check_bias_weight(self.bias_weight, self.mode))
        set_(self, "unmatched", parse_unmatched(self.unmatched))
        set_(self, "top_k", check_top_k(self.top_k))
        for name in ("fold", "confidence", "splits"):
            value = getattr(self, name)
            if isinstance(value, str) or value not in (True, False):  # bool, numpy bool, 0, 1
                raise ValueError(f"matching.{name} must be true or false, got {value!r}")
            set_(self, name, bool(value))
        if not 0 < self.null_alpha < 1:
            raise ValueError(f"the null quantile alpha must be in (0, 1), got {self.null_alpha}")

    def kwargs(self) -> dict:
        """The options as match()'s keyword arguments (Solver objects kept as they are)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def beyond(self) -> dict:
        """The settings beyond the bijection that are on (unmatched, confidence, top_k,
        splits; null_alpha and seed when not the default): what the match-cache key adds."""
        out = {k: getattr(self, k) for k in ("confidence", "top_k", "splits")}
        out = {k: v for k, v in out.items() if v}
        if self.unmatched is not None:  # ρ = 0 included: not the bijection
            out = {"unmatched": self.unmatched, **out}
        for k in ("null_alpha", "seed"):
            if out and getattr(self, k) != getattr(DEFAULTS, k):
                out[k] = getattr(self, k)
        return out

    @property
    def analyses(self) -> bool:
        """Whether any analysis runs after the solve (confidence, predecessors, splits)."""
        return self.confidence or self.top_k > 0 or self.splits

    @property
    def needs_null(self) -> bool:
        """Whether the rotation null is needed: for unmatched="auto" (ρ) or splits (κ*)."""
        return self.unmatched == "auto" or self.splits


DEFAULTS = MatchOptions()
