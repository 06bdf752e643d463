"""numba kernels of the int8 screen (screen.py): the block-pair scan and exact dots."""

from __future__ import annotations

import numba as nb
import numpy as np

from saematch.matching.beyond.confidence import offer


@nb.njit(cache=True, nogil=True, inline="always")
def _est(I, a, b, i, k, sa, sb, tla, tlb, r, sp):
    """ĉ of C'[i, k] from the parts' int32 products I[:, a, b] (float64)."""
    g = 0.0
    for p in range(I.shape[0]):
        g += np.float64(I[p, a, b]) * np.float64(sa[i, p]) * np.float64(sb[k, p])
    for t in range(tla.shape[1]):
        g += np.float64(tla[i, t]) * np.float64(tlb[k, t])
    return g + r[i] + sp[k]


@nb.njit(cache=True, nogil=True)
def screen_block(IP, IQ, i0, k0, same, sa, sb, tla, tlb, r, sp, E1, F1, E2, F2, pf, ta, tbp,
                  dd, cv, ck, low, pv, pi, sv, si, u, vp, lo_r, lo_c):  # fmt: skip
    """Fold the block pair C'[I, K] (IP) and C'[K, I]ᵀ (IQ, same layout) into the
    accumulators (module doc)."""
    use_duals = u.shape[0] > 0
    for a in range(IP.shape[1]):
        i = i0 + a
        for b in range(a + 1 if same else 0, IP.shape[2]):
            k = k0 + b
            x1 = _est(IP, a, b, i, k, sa, sb, tla, tlb, r, sp)  # ≈ c_i,p(k)
            x2 = _est(IQ, a, b, k, i, sa, sb, tla, tlb, r, sp)  # ≈ c_k,p(i)
            e1 = E1[i] * F1[k] + E2[i] * F2[k]
            e2 = E1[k] * F1[i] + E2[k] * F2[i]
            t1, t2 = ta[i] + tbp[k], ta[k] + tbp[i]
            base = dd[i] + dd[k]
            est = min(x1, t1) + min(x2, t2) - base
            lb = min(x1 - e1, t1) + min(x2 - e2, t2) - base
            offer(cv, ck, i, est, k)
            offer(cv, ck, k, est, i)
            low[i] = min(low[i], lb)
            low[k] = min(low[k], lb)
            offer(pv, pi, pf[k], x1, i)
            offer(pv, pi, pf[i], x2, k)
            offer(sv, si, i, x1, pf[k])
            offer(sv, si, k, x2, pf[i])
            if use_duals:
                lo_r[i] = min(lo_r[i], x1 - e1 - u[i] - vp[k])
                lo_c[k] = min(lo_c[k], x1 - e1 - u[i] - vp[k])
                lo_r[k] = min(lo_r[k], x2 - e2 - u[k] - vp[i])
                lo_c[i] = min(lo_c[i], x2 - e2 - u[k] - vp[i])


@nb.njit(cache=True, nogil=True, fastmath=True)
def exact_into(xa, xb, rows, cols, out, lo, hi):
    """out[t] = xa[rows[t]] · xb[cols[t]] in float64, for t in [lo, hi)."""
    for t in range(lo, hi):
        acc = 0.0
        for d in range(xa.shape[1]):
            acc += np.float64(xa[rows[t], d]) * np.float64(xb[cols[t], d])
        out[t] = acc
