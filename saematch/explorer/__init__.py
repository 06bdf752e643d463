"""A self-contained HTML page to follow SAE features through the layers (composed and exact)."""

from saematch.explorer.data import ExplorerData, Link, Predecessor, link_from_matching
from saematch.explorer.page import DATA_DIR, write_explorer

__all__ = [
    "DATA_DIR",
    "ExplorerData",
    "Link",
    "Predecessor",
    "link_from_matching",
    "write_explorer",
]
