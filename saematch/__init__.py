"""saematch: data-free matching of SAE features across layers (SAE Match, ICLR 2025)."""

from saematch.sae import JumpReLUSAE

__version__ = "0.1.0"
__all__ = ["JumpReLUSAE"]
