"""Matching SAE features across layers (SPEC §3, paper eq. 3)."""

from saematch.matching.beyond import match_beyond
from saematch.matching.cache import CODE_VERSION, cache_key, match_layers
from saematch.matching.certificate import Certificate, check_certificate, check_matching
from saematch.matching.cost import MODES, pair_cost
from saematch.matching.match import Matching, match
from saematch.matching.permutation import Permutation, compose_chain, feature_path
from saematch.matching.solvers import SOLVERS, AutoSolver, LapjvSolver, ScipySolver, Solver

__all__ = [
    "CODE_VERSION",
    "MODES",
    "SOLVERS",
    "AutoSolver",
    "LapjvSolver",
    "ScipySolver",
    "Solver",
    "Certificate",
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
]
