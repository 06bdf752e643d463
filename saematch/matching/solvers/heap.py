"""Binary min-heaps in flat arrays (numba), shared by the sparse LAP and the dual proofs.

A heap is (keys hk, values hv, size); push/pop return the new size. The *pending* heap is a
lazy one over columns: keys v_j + s_j, a flag per column, stale entries skipped when popped.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def heap_push(hk, hv, size, key, val):
    """Push (key, val); returns the new size (hk, hv must have room)."""
    pos = size
    hk[pos], hv[pos] = key, val
    while pos > 0:
        par = (pos - 1) >> 1
        if hk[par] <= hk[pos]:
            break
        hk[par], hk[pos] = hk[pos], hk[par]
        hv[par], hv[pos] = hv[pos], hv[par]
        pos = par
    return size + 1


@nb.njit(cache=True)
def heap_pop(hk, hv, size):
    """Pop the smallest key; returns (key, val, new size)."""
    key, val = hk[0], hv[0]
    size -= 1
    hk[0], hv[0] = hk[size], hv[size]
    pos = 0
    while True:
        left = 2 * pos + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and hk[left + 1] < hk[left]:
            child = left + 1
        if hk[pos] <= hk[child]:
            break
        hk[pos], hk[child] = hk[child], hk[pos]
        hv[pos], hv[child] = hv[child], hv[pos]
        pos = child
    return key, val, size


@nb.njit(cache=True)
def all_pending(v, s):
    """A lazy heap (keys v_j + s_j) holding every column, all marked pending."""
    n = v.shape[0]
    hk = np.empty(4 * n)
    hv = np.empty(4 * n, dtype=np.int64)
    size = 0
    for j in range(n):
        size = heap_push(hk, hv, size, v[j] + s[j], j)
    return hk, hv, np.ones(n, dtype=np.bool_), size


@nb.njit(cache=True)
def pop_pending(hk, hv, size, pend, v, s):
    """The pending column of smallest key, no longer pending (−1 when none); skips stale
    entries. Returns (column, heap size)."""
    while size > 0:
        key, j0, size = heap_pop(hk, hv, size)
        if pend[j0] and key <= v[j0] + s[j0]:
            pend[j0] = False
            return j0, size
    return -1, size


@nb.njit(cache=True)
def push_pending(hk, hv, size, pend, v, s, j):
    """Mark column j pending and push it with key v_j + s_j; returns the heap size.

    When full, the heap is rebuilt from the pending columns alone.
    """
    pend[j] = True
    if size == hk.shape[0]:
        size = 0
        for t in range(pend.shape[0]):
            if pend[t]:
                size = heap_push(hk, hv, size, v[t] + s[t], t)
        return size
    return heap_push(hk, hv, size, v[j] + s[j], j)
