"""Beyond the bijection: what match() can compute besides the paper's permutation.

    partial.py         unmatched=ρ | "auto": the exact partial matching with reject costs
    null.py            the rotation null behind unmatched="auto" (ρ = 1 − κ*) and splits
    confidence.py      swap regret, top-k predecessors, best successors: one float32 pass
    screen.py          the same on the int8 estimate (where torch has an int8 GEMM)
    screen_kernels.py  the screen's numba kernels
    splits.py          one feature whose two best successors are both close

match() (match.py) calls them after the solve; none of them imports match().
"""
