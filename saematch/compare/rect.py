"""Exact rectangular matching of two SAEs of different widths, certified by LP duals.

Every feature of the narrow side gets a distinct partner on the wide side, minimising the
total cost (docs/method.md §3: the folded MSE of decoder + encoder in mode both):

    min_σ  Σ_{i narrow} c_i,σ(i)      σ one-to-one from the narrow side into the wide side   (R)

Reduction to the square problem, so the certified solvers run unchanged. The solvers read
augmented features (cost.py) as a-side rows [h, r, 1] and b-side rows [h', 1, s] (x·y = c_ij,
the last two slots added exactly). Moving the wide side's squared norm into one extra head
dimension kept exact (the solvers' `exact_tail`, as for mode both's b_enc term) and zeroing
its norm slot gives the same c_ij for real pairs and lets a padding feature of the narrow side
cost exactly 0 against every wide feature:

    narrow = a:  x_i = [z_i, 1, r_i, 1],   dummy x = [0, 0, 0, 1];   y_j = [−2z'_j, s_j, 1, 0]
    narrow = b:  x_i = [z_i, r_i, 0, 1];   y_j = [−2z'_j, 1, 1, s_j],   dummy y = [0, 0, 1, 0]

Padding the narrow side with n_w − n_n dummies gives a square problem whose every bijection
costs (R)'s cost of its real rows (+ 0), so its optimum restricted to the real rows is an
optimum of (R). Its LP duals (u, v) prove the square optimum, hence (R)'s. (Zero dummies of
the plain features would cost s_j, not a constant, and bias which wide features stay free.)

Certificate of (R) itself (rectangular LP: rows = 1, columns ≤ 1; dual max Σu + Σv with
u_i + v_j ≤ c_ij and v_j ≤ 0): shift t = −max_d u_d over the dummy rows d, v' = v − t,
u' = u + t. Then u'_i + v'_j ≤ c_ij + tol, v'_j ≤ tol, and v'_j ≥ −tol on the columns left
free (they sat with dummies); `check_rect_certificate` verifies exactly that from the costs.

Reduced columns (`reduced_assign`, route "reduced-columns"): padding makes an n × W problem a
W × W one, W/n times the work of the pair (its bound GEMMs over W − n dummy rows, and dummy
rows tie everywhere, so they all land in the solver's dense rest). When the wide side is at
least twice the narrow one, the square solve runs instead on a candidate set S of wide
features (each narrow row's CANDIDATES cheapest, from one float32 n × W GEMM pass), padded to
|S|. Its duals extend to all of W with v_j = 0 outside S; they prove (R) when every j ∉ S has
c_ij − u_i ≥ −tol, checked in a second n × (W − |S|) pass: float32 with a sound rounding
margin, the few pairs it cannot clear decided by the float64 dot the certificate uses
(`outside_violators`); violating columns join S and the sub-problem is solved again. Past
REDUCE_SHARE · W candidates the padded route runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from saematch.matching import Matching
from saematch.matching.budget import resolve_budget
from saematch.matching.cost import augmented_features, feature_dim
from saematch.matching.solvers import get_solver, resolve_device
from saematch.matching.solvers.fp32 import dot_margins
from saematch.matching.solvers.proof import exact_costs
from saematch.sae import JumpReLUSAE


def check_same_stream(a: JumpReLUSAE, b: JumpReLUSAE) -> None:
    """ValueError unless a and b read the same stream width (d_model); widths may differ."""
    if a.d_model != b.d_model:
        raise ValueError(
            f"compare: the SAEs read different streams: d_model {a.d_model} ({a.name or 'a'}) "
            f"vs {b.d_model} ({b.name or 'b'}). Two dictionaries can only be compared on the "
            "same activations; pick SAEs of one model and one site (same d_model)."
        )


def layout_of(d_model: int, mode: str) -> dict:
    """The solvers' view of the plain augmented features (cost.py's cost_layout for
    bias_weight 0): decoder and encoder parts get their own int8 scales in mode both."""
    return {"exact_tail": 0, "head_splits": (d_model,) * (mode == "both")}


def rect_features(xa: np.ndarray, xb: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(xa', xb', narrow_is_a): the padded square features of the module doc, (n_w, D + 3) each.

    xa, xb: cost.py's augmented features (side a, side b) of any widths. xa' · xb'ᵀ restricted
    to the real rows and columns is xa · xbᵀ; every padding row or column costs 0. The extra
    dimension D sits right after z: solve with exact_tail + 1.
    """
    D = xa.shape[1] - 2
    narrow_is_a = len(xa) <= len(xb)
    n = max(len(xa), len(xb))
    pa = np.zeros((n, D + 3), dtype=xa.dtype)
    pb = np.zeros((n, D + 3), dtype=xb.dtype)
    na, nb = len(xa), len(xb)
    pa[:na, :D], pb[:nb, :D] = xa[:, :D], xb[:, :D]
    pa[:, D + 2] = 1.0  # every a-side row ends in 1 (the solvers' layout), padding included
    if narrow_is_a:  # the wide side b's norm s_j moves into the exact head dimension D
        pa[:na, D], pa[:na, D + 1] = 1.0, xa[:, D]
        pb[:nb, D], pb[:nb, D + 1] = xb[:, D + 1], 1.0
    else:  # the wide side a's norm r_i moves there; b's padding columns are [0, 0, 1, 0]
        pa[:na, D] = xa[:, D]
        pb[:, D + 1] = 1.0
        pb[:nb, D], pb[:nb, D + 2] = 1.0, xb[:, D + 1]
    return pa, pb, narrow_is_a


@dataclass
class RectCertificate:
    """What check_rect_certificate found; ok ⇔ every condition holds within tol."""

    ok: bool
    min_reduced: float  # min over real (i, j) of c_ij − u_i − v_j (≥ −tol)
    max_slack: float  # max over the matched pairs of c_iσ(i) − u_i − v_σ(i) (≤ tol)
    max_v: float  # max_j v_j (≤ tol: the dual constraint v_j ≤ 0)
    min_free_v: float  # min over free columns of v_j (≥ −tol: complementary slackness)
    gap_bound: float  # cost − optimum ≤ this


def solve_features(
    xa: np.ndarray,
    xb: np.ndarray,
    n_narrow: int,
    narrow_is_a: bool,
    solver="auto",
    layout: dict | None = None,
    work_bytes: int | None = None,
    device: str = "cpu",
    progress: bool = False,
):
    """(sigma (n_n,), u (n_n,), v (n_w,), tol, info) of square features xa, xb: the plain
    ones when the widths are equal, else rect_features' padded ones (n_narrow real rows on
    the narrow side). layout: the plain features' (layout_of); work_bytes: the solver's
    working memory in bytes (features excluded)."""
    layout = dict(layout or {"exact_tail": 0, "head_splits": ()})
    n_w = len(xa)
    padded = n_w > n_narrow
    layout["exact_tail"] = layout.get("exact_tail", 0) + int(padded)
    layout["pad_rows" if narrow_is_a else "pad_cols"] = n_w - n_narrow  # rect_features' dummies
    res = get_solver(solver)(
        xa, xb, progress=progress, work_bytes=work_bytes, device=device, **layout
    )
    if narrow_is_a:
        perm, u_all, v_all = res.perm, res.u, res.v
    else:  # the square matching is wide -> padded narrow; invert it
        perm = np.empty(n_w, dtype=np.int64)
        perm[res.perm] = np.arange(n_w)
        u_all, v_all = res.v, res.u
    sigma = np.asarray(perm[:n_narrow], dtype=np.int64)
    u, v = np.asarray(u_all, np.float64), np.asarray(v_all, np.float64)
    # the shift t of the module doc; square: max v = 0 (every column is matched)
    t = -float(u[n_narrow:].max()) if padded else float(v.max(initial=0.0))
    info = {**res.info, "padded": n_w - n_narrow, "route": "padded-square" if padded else "square"}
    info["narrow"] = "a" if narrow_is_a else "b"
    # the shift is exact in real numbers but rounds in float64: widen tol by that rounding
    big = abs(t) + float(np.abs(u).max(initial=0.0)) + float(np.abs(v).max(initial=0.0))
    tol = float(res.tol) + 8 * float(np.finfo(np.float64).eps) * big
    return sigma, u[:n_narrow] + t, v - t, tol, info


CANDIDATES = 2  # cheapest wide features per narrow row in the first candidate set
REDUCE_SHARE = 0.5  # the reduced route while |S| ≤ this share of the wide side
REDUCE_ROUNDS = 6  # candidate-set growths before the padded route takes over


def _narrow_rows(xa, xb, narrow_is_a: bool):
    """(xn, xw): narrow-side rows and wide-side rows with xn[i] · xw[j] = c of the pair."""
    return (xa, xb) if narrow_is_a else (xb, xa)


def _gemm_block(n_w: int, work_bytes: int | None) -> int:
    """Narrow rows per n × W float32 pass: ~6 block × n_w float32 arrays within work_bytes."""
    room = (work_bytes or 2**30) // (24 * max(n_w, 1))
    return int(max(16, min(1024, room)))


def candidate_columns(xn: np.ndarray, xw: np.ndarray, k: int, block: int) -> np.ndarray:
    """Sorted union of each narrow row's k cheapest wide columns (float32 GEMM in row blocks)."""
    k = min(k, len(xw))
    keep = np.zeros(len(xw), dtype=bool)
    for r0 in range(0, len(xn), block):
        c = xn[r0 : r0 + block] @ xw.T  # (blk, n_w)
        keep[np.argpartition(c, k - 1, axis=1)[:, :k].ravel()] = True
    return np.flatnonzero(keep)


def outside_violators(xn, xw, u, inside, tol: float, block: int, col_block: int = 4096):
    """Wide columns j ∉ S (inside[j] False) with c_ij − u_i < −tol for some narrow row i: the
    ones the extended duals (v_j = 0) do not cover. Empty: the duals prove (R).

    One float32 pass, tile by tile, screens every pair with a sound rounding margin
    (fp32.dot_margins: the z part by Cauchy–Schwarz, the norm slots exactly): a pair whose
    float32 product is at least u_i − tol + margin cannot violate. The pairs the screen keeps
    are decided by the float64 dot, the certificate's (rect_cost_fn). The first version
    computed every tile in float64: its float32 margin, γ‖x‖‖y‖ on the augmented rows, let
    the slots' 1s flag most pairs (as in beyond/partial.py before the same fix)."""
    outside = np.flatnonzero(~inside)
    bad = np.zeros(len(xw), dtype=bool)
    if not len(outside) or not len(xn):
        return np.zeros(0, dtype=np.int64)
    g, hn, hw, tn, tw, en, ew = dot_margins(xn, xw)
    lim_n = np.asarray(u, dtype=np.float64) - tol + en
    for c0 in range(0, len(outside), col_block):
        cols = outside[c0 : c0 + col_block]
        yt = np.ascontiguousarray(xw[cols]).T  # (D + 2, cb) float32
        hc, t0, t1, ec = hw[cols], tw[cols, 0], tw[cols, 1], ew[cols]
        for r0 in range(0, len(xn), block):
            rs = slice(r0, r0 + block)
            c = xn[rs] @ yt  # (blk, cb) float32
            lim = np.multiply.outer(hn[rs], hc)
            lim += np.multiply.outer(tn[rs, 0], t0)
            lim += np.multiply.outer(tn[rs, 1], t1)
            lim *= g
            lim += lim_n[rs, None]
            lim += ec[None, :]
            i, j = np.nonzero(c < lim)
            del c, lim
            for p0 in range(0, len(i), 4096):  # the float64 dots of the pairs kept
                ii, jj = i[p0 : p0 + 4096] + r0, cols[j[p0 : p0 + 4096]]
                bad[jj[exact_costs(xn, xw, ii, jj) - u[ii] < -tol]] = True
    return np.flatnonzero(bad)


def reduced_assign(xa, xb, solver, layout, work_bytes, device, progress=False):
    """(sigma, u, v, tol, info) of (R) by the reduced-column route (module doc), or None when
    the candidate set outgrows REDUCE_SHARE of the wide side (the caller pads instead).

    work_bytes: memory beyond xa and xb for the route's own arrays (the candidate set's slice
    and its padded copies, counted here) and its solver, which gets the rest. The first
    version handed its solver all of it: at 16,384 × 65,536 (mode both, 6 GB) compare() peaked
    at +7.98 GB."""
    narrow_is_a = len(xa) <= len(xb)
    n_n, n_w = min(len(xa), len(xb)), max(len(xa), len(xb))
    xn, xw = _narrow_rows(xa, xb, narrow_is_a)
    block = _gemm_block(n_w, work_bytes)
    cols = candidate_columns(xn, xw, CANDIDATES, block)
    if len(cols) < n_n:  # rows sharing their best columns: any others make S wide enough
        rest = np.setdiff1d(np.arange(n_w), cols)[: n_n - len(cols)]
        cols = np.union1d(cols, rest)
    grown, D = [], xa.shape[1] - 2
    for _ in range(REDUCE_ROUNDS):
        if len(cols) > REDUCE_SHARE * n_w:
            return None
        held = len(cols) * (D + 2) * 4 + (2 * len(cols) * (D + 3) * 4 if len(cols) > n_n else 0)
        if work_bytes is not None and held >= work_bytes:
            return None  # the padded route says what the budget lacks
        sa, sb = (xa, xb[cols]) if narrow_is_a else (xa[cols], xb)
        if len(cols) > n_n:
            sa, sb, _ = rect_features(sa, sb)
        left = None if work_bytes is None else work_bytes - held
        sigma, u, v_s, tol, info = solve_features(
            sa, sb, n_n, narrow_is_a, solver, layout, left, device, progress
        )
        del sa, sb
        inside = np.zeros(n_w, dtype=bool)
        inside[cols] = True
        extra = outside_violators(xn, xw, u, inside, tol, block)
        grown.append(len(extra))
        if not len(extra):
            v = np.zeros(n_w)
            v[cols] = v_s
            info = {**info, "route": "reduced-columns", "columns": len(cols), "grown": grown}
            info["padded"] = max(len(cols) - n_n, 0)
            return cols[sigma], u, v, tol, info
        cols = np.union1d(cols, extra)
    return None


def rect_assign(
    xa: np.ndarray,
    xb: np.ndarray,
    solver="auto",
    layout: dict | None = None,
    work_bytes: int | None = None,
    device: str = "cpu",
    progress: bool = False,
):
    """(sigma (n_n,), u (n_n,), v (n_w,), tol, info): optimum of (R) with its rectangular duals.

    xa, xb: cost.py's augmented features of sides a and b (any widths); sigma maps the narrow
    side's rows to the wide side's, u, v are the shifted duals of the module doc (u: narrow
    side); info["narrow"] = "a" | "b". layout: the plain features' (layout_of).
    """
    n_n = min(len(xa), len(xb))
    if len(xa) == len(xb):
        return solve_features(xa, xb, n_n, True, solver, layout, work_bytes, device, progress)
    if max(len(xa), len(xb)) >= 2 * n_n:
        res = reduced_assign(xa, xb, solver, layout, work_bytes, device, progress)
        if res is not None:
            return res
    pa, pb, narrow_is_a = rect_features(xa, xb)
    return solve_features(pa, pb, n_n, narrow_is_a, solver, layout, work_bytes, device, progress)


def check_rect_certificate(cost_fn, sigma, u, v, tol: float = 0.0, block: int = 1024):
    """Verify that duals (u, v) prove sigma optimal for (R) (module doc), from the costs alone.

    cost_fn(slice of narrow rows) -> (rows, n_w) float64 costs c_ij. Checks u_i + v_j ≤ c_ij +
    tol for all pairs, tightness on sigma, v ≤ tol, v ≥ −tol on free columns; gap_bound =
    Σ slack + n_n·max(0, −min_reduced) + Σ_free |v_j| bounds cost − optimum.
    """
    sigma = np.asarray(sigma, dtype=np.int64)
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    n_n, n_w = len(sigma), len(v)
    if u.shape != (n_n,) or sigma.ndim != 1:
        raise ValueError(f"sigma, u must have shape (n_narrow,); got {sigma.shape}, {u.shape}")
    if n_n and (sigma.min() < 0 or sigma.max() >= n_w or len(np.unique(sigma)) != n_n):
        raise ValueError("sigma is not one-to-one into range(n_wide)")
    min_red, slack = np.inf, np.empty(n_n)
    for r0 in range(0, n_n, block):
        r1 = min(n_n, r0 + block)
        c = np.asarray(cost_fn(slice(r0, r1)), dtype=np.float64)
        red = c - u[r0:r1, None] - v[None, :]
        min_red = min(min_red, float(red.min()))
        slack[r0:r1] = red[np.arange(r1 - r0), sigma[r0:r1]]
    free = np.ones(n_w, dtype=bool)
    free[sigma] = False
    min_free = float(v[free].min()) if free.any() else 0.0
    max_v = float(v.max()) if n_w else 0.0
    max_slack = float(slack.max()) if n_n else 0.0
    min_red = float(min_red) if n_n else 0.0
    gap = float(slack.sum()) + n_n * max(0.0, -min_red) + float(np.abs(v[free]).sum())
    ok = min_red >= -tol and max_slack <= tol and max_v <= tol and min_free >= -tol
    return RectCertificate(ok, min_red, max_slack, max_v, min_free, gap)


def match_rect(
    a: JumpReLUSAE,
    b: JumpReLUSAE,
    *,
    mode: str = "both",
    fold: bool = True,
    solver="auto",
    max_memory: int | None = None,
    device: str = "auto",
    progress: bool = False,
) -> Matching:
    """The exact matching of a and b of any widths: (R) from the narrow side into the wide one.

    Returns a Matching with perm (F_A,) int64: a's feature i -> b's perm[i], −1 for the
    features of a left free when a is the wide side; pair_mse the exact float64 cost (as
    float32, NaN where free); duals (u (F_A,), v (F_B,)) the rectangular ones of the module
    doc (for a wide a, u holds the wide side's duals, ≤ tol); info["narrow"] = "a" | "b".
    Equal widths give the bijection of match() (same solver, same certificate).
    """
    check_same_stream(a, b)
    for side, sae in (("a", a), ("b", b)):
        try:
            sae.validate()
            if fold:
                sae.check_foldable()
        except ValueError as e:
            raise ValueError(f"compare: SAE {side} ({sae.name or 'unnamed'}): {e}") from None
    t0 = time.perf_counter()
    budget = resolve_budget(max_memory)
    n_n, n_w = min(a.width, b.width), max(a.width, b.width)
    D = feature_dim(a.d_model, mode)
    feats = 2 * n_w * (D + 2 + int(n_w > n_n)) * 4  # the two square float32 feature arrays
    plain = (n_n + n_w) * (D + 2) * 4 if n_w > n_n else 0  # alive while the padded are made
    if feats + plain >= budget:
        raise MemoryError(
            f"compare: the features of a {n_n} x {n_w} matching (d {a.d_model}, mode {mode}) "
            f"take {(feats + plain) / 1e9:.2f} GB, more than max_memory "
            f"{budget / 1e9:.2f} GB; raise matching.max_memory"
        )
    xa = augmented_features(a, mode, "a", np.float32, fold=fold)
    xb = augmented_features(b, mode, "b", np.float32, fold=fold)
    narrow_is_a = a.width <= b.width
    layout, dev = layout_of(a.d_model, mode), resolve_device(device)
    res = None
    if n_w >= 2 * n_n:  # the wide side's candidates only (module doc), or None
        res = reduced_assign(xa, xb, solver, layout, budget - plain, dev, progress)
    if res is None:
        if a.width != b.width:  # the padded copies replace the plain features
            xa, xb, _ = rect_features(xa, xb)
        res = solve_features(xa, xb, n_n, narrow_is_a, solver, layout, budget - feats, dev,
                             progress)  # fmt: skip
    sigma, u, v, tol, info = res
    cost_n = exact_pair_cost(xa, xb, sigma, narrow_is_a)  # plain or padded: the same c_ij
    del xa, xb
    if narrow_is_a:
        perm, pair, ua, vb = sigma, cost_n, u, v
    else:
        perm = np.full(a.width, -1, dtype=np.int64)
        perm[sigma] = np.arange(b.width)
        pair = np.full(a.width, np.nan, dtype=np.float64)
        pair[sigma] = cost_n
        ua, vb = v, u
    return Matching(
        perm=perm,
        pair_mse=pair.astype(np.float32),
        total_cost=float(np.nansum(cost_n)),
        mode=mode,
        fold=bool(fold),
        solver=get_solver(solver).key(),
        seconds=time.perf_counter() - t0,
        info={**info, "tol": tol},
        duals=(ua, vb),
    )


def exact_pair_cost(xa, xb, sigma, narrow_is_a: bool) -> np.ndarray:
    """c_i,σ(i) (n_n,) in float64 from the (square) float32 features the solver saw: the
    float64 dot, as the proof uses it. sigma: the narrow side's rows -> the wide side's."""
    idx, sigma = np.arange(len(sigma)), np.asarray(sigma, dtype=np.int64)
    rows, cols = (idx, sigma) if narrow_is_a else (sigma, idx)
    return exact_costs(xa, xb, rows, cols)  # no float64 copies: 12 GB at 131k, mode both


def rect_cost_fn(xa: np.ndarray, xb: np.ndarray):
    """cost_fn for check_rect_certificate: narrow rows -> (rows, n_w) float64 costs c_ij, the
    float64 dot of the features the solver proved on (padded ones for different widths)."""
    n_n = min(len(xa), len(xb))
    if len(xa) == len(xb):
        pn, pw = xa, xb
    else:
        pa, pb, narrow_is_a = rect_features(xa, xb)
        pn, pw = (pa[:n_n], pb) if narrow_is_a else (pb[:n_n], pa)

    def cost(rows: slice) -> np.ndarray:
        return pn[rows].astype(np.float64) @ pw.T.astype(np.float64)

    return cost


def check_match_rect(a: JumpReLUSAE, b: JumpReLUSAE, m: Matching) -> RectCertificate:
    """check_rect_certificate for a match_rect Matching of a, b (its mode, fold and tol)."""
    if m.duals is None:
        raise ValueError("this matching carries no duals: nothing to check")
    xa = augmented_features(a, m.mode, "a", np.float32, fold=m.fold)
    xb = augmented_features(b, m.mode, "b", np.float32, fold=m.fold)
    cost_fn, tol = rect_cost_fn(xa, xb), m.info["tol"]
    if m.info.get("narrow", "a") == "a":
        return check_rect_certificate(cost_fn, m.perm, *m.duals, tol)
    sigma = np.empty(b.width, dtype=np.int64)
    rows = np.flatnonzero(m.perm >= 0)
    sigma[m.perm[rows]] = rows
    return check_rect_certificate(cost_fn, sigma, m.duals[1], m.duals[0], tol)
