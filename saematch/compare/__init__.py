"""Compare any two SAEs that read the same stream: seeds, widths, checkpoints, models.

    from saematch.compare import compare, load_reference
    c = compare(load_reference("planted:layer=3"), load_reference("planted:layer=3,index=1"))
    print(c.console())

Exact rectangular matching with its certificate (rect.py), shared / unshared features by the
rotation null (shared.py), families of the wide side (families.py), PW-MCC (cosine.py).
"""

from saematch.compare.compare import Comparison, compare
from saematch.compare.cosine import CosineMatching, cosine_matching
from saematch.compare.families import Families, families
from saematch.compare.rect import check_match_rect, check_rect_certificate, match_rect
from saematch.compare.shared import Shared, shared_features

__all__ = [
    "Comparison",
    "CosineMatching",
    "Families",
    "Shared",
    "check_match_rect",
    "check_rect_certificate",
    "compare",
    "cosine_matching",
    "families",
    "match_rect",
    "shared_features",
]
