"""saematch: data-free matching of SAE features across layers (SAE Match, ICLR 2025)."""

from saematch.sae import JumpReLUSAE

__version__ = "0.1.0"
__all__ = ["JumpReLUSAE", "load_matching", "save_match_file"]


def __getattr__(name: str):
    # the match file pulls in the matching stack (numba, scipy): load it on first use only
    if name in ("load_matching", "save_match_file"):
        from saematch import matchfile

        return getattr(matchfile, name)
    raise AttributeError(f"module 'saematch' has no attribute {name!r}")
