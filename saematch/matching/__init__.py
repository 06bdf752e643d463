"""Matching SAE features across layers (paper eq. 3, docs/method.md §3).

m = match(a, b)            # fold → cost → solve → certificate → analyses (match.py)
ms = match_layers(saes)    # every adjacent pair, through an on-disk cache (cache.py)

match.py        match(): the method, one call per step; Matching, the result
options.py      MatchOptions: every setting and its one default
cost.py         the cost of each mode and the augmented features (fold + cost)
budget.py       the memory budget, every byte estimate, the MemoryError
certificate.py  LP duals that prove a matching optimal, and a checker
permutation.py  compose, invert, apply permutations
cache.py        match_layers() and the match cache
solvers/        the LAP solvers (dense, stored certified, streamed certified)
beyond/         partial matching, the rotation null, confidence, splits
"""

from saematch.matching.cache import CODE_VERSION, cache_key, match_layers
from saematch.matching.certificate import Certificate, check_certificate, check_matching
from saematch.matching.cost import MODES, pair_cost
from saematch.matching.match import Matching, match, match_beyond
from saematch.matching.options import DEFAULTS, MatchOptions, parse_unmatched
from saematch.matching.permutation import Permutation, compose_chain, feature_path
from saematch.matching.solvers import SOLVERS, AutoSolver, LapjvSolver, ScipySolver, Solver

__all__ = [
    "CODE_VERSION",
    "DEFAULTS",
    "MODES",
    "SOLVERS",
    "AutoSolver",
    "LapjvSolver",
    "ScipySolver",
    "Solver",
    "Certificate",
    "MatchOptions",
    "Matching",
    "Permutation",
    "cache_key",
    "check_certificate",
    "check_matching",
    "compose_chain",
    "feature_path",
    "match",
    "match_beyond",
    "match_layers",
    "pair_cost",
    "parse_unmatched",
]
