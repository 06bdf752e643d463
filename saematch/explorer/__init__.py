"""Self-contained HTML pages: follow SAE features through the layers (composed and exact);
compare two dictionaries side by side (compare_view.py)."""

from saematch.explorer.compare_view import CompareView, view_from_comparison, write_compare_page
from saematch.explorer.data import ExplorerData, Link, Predecessor, link_from_matching
from saematch.explorer.page import DATA_DIR, write_explorer

__all__ = [
    "CompareView",
    "DATA_DIR",
    "ExplorerData",
    "Link",
    "Predecessor",
    "link_from_matching",
    "view_from_comparison",
    "write_compare_page",
    "write_explorer",
]
