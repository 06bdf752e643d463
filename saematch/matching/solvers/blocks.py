"""The quantised bound in row blocks, on any torch device: nothing n×n is ever stored.

For augmented features (cost.py) c_ij = r_i + s_j + g_ij, g_ij = a_i · b_j with a_i = z_A,i and
b_j = −2 z_B,j over the head (all dims but an exact tail, e.g. mode "both"'s b_enc). Each head
is quantised per part (a = σq + δ, q int8, σ = max|a|/127 per row and part), once per side.
One int8 GEMM per row block and part (exact int32 sums) gives the estimate
ĝ_ij = Σ_p σ_ip σ'_jp (q_i · q'_j)_p + tail_i · tail'_j, and (quantised.py, the same algebra)

    c_ij ≥ L_ij = ĝ_ij + ρ_i + κ_j − E1_i F1_j − E2_i F2_j

with E1 = ‖δ‖, F1 = ‖b‖, E2 = ‖σq‖, F2 = ‖δ'‖ + 8ε‖σ'q'‖, ρ_i = r_i − 8ε Σ_t |tail_it| max|tail'_t|
− 64ε r_i and κ_j = s_j − 64ε s_j: the 64ε terms cover evaluating L in float32 (every term is
at most r_i + s_j in size). `LowerBound.block(rows)` returns L for those rows and every
column, as a float32 tensor on the device.

With the float32 backend (gemm.py, fp32.py; docs/method.md §13) the same L holds with
ĝ_ij = fl32(a_i · b_j) over all D dims (one float32 GEMM, tail included), σ = σ' = 1, E1 =
γ_D‖a_G1‖, F1 = ‖b_G1‖, E2 = γ_D‖a_G2‖, F2 = ‖b_G2‖ and ρ_i, κ_j lowered by the underflow terms
η_i, η'_j instead of the tail's: every consumer (kernels.py, candidates, proof) runs unchanged.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch

from saematch.matching.solvers.fp32 import fp32_terms
from saematch.matching.solvers.gemm import bound_gemm, fp32_mm
from saematch.matching.solvers.quantised import part_bounds

EPS = float(np.finfo(np.float32).eps)


def _pad8(m: int) -> int:
    return -(-m // 8) * 8


def quantise(z: np.ndarray, parts, device, rows: int = 4096):
    """int8 q per part (n, width padded to 8) on device, scales σ (n, P) float32, and norms
    ‖δ‖, ‖σq‖, ‖z‖ over the whole head (n,) float64, each rounded UP (float32 sums: relative
    error ≤ hε, and fl(σq) off by ≤ ε|σq| per entry). In row blocks, on the device."""
    n = z.shape[0]
    h = max(hi for _, hi in parts) if parts else 0
    qs = [torch.zeros((n, _pad8(hi - lo)), dtype=torch.int8, device=device) for lo, hi in parts]
    scale = torch.empty((n, len(parts)), dtype=torch.float32, device=device)
    dsq, qsq, zsq = (torch.zeros(n, dtype=torch.float32, device=device) for _ in range(3))
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        for p, (lo, hi) in enumerate(parts):
            zp = torch.from_numpy(z[r0:r1, lo:hi]).to(device)
            m = zp.abs().amax(1)
            s = torch.where(m > 0, m / 127, torch.ones_like(m))
            q = torch.round(zp / s[:, None]).clamp_(-127, 127)
            deq = q * s[:, None]
            dsq[r0:r1] += (zp - deq).square_().sum(1)
            qsq[r0:r1] += deq.square_().sum(1)
            zsq[r0:r1] += zp.square().sum(1)
            qs[p][r0:r1, : hi - lo] = q.to(torch.int8)
            scale[r0:r1, p] = s
    up = 1 + 4 * (h + 8) * EPS
    qn = qsq.double().sqrt().cpu().numpy() * up
    dn = dsq.double().sqrt().cpu().numpy() * up + 4 * EPS * qn
    return qs, scale, dn, qn, zsq.double().sqrt().cpu().numpy() * up


def int8_matmul(a: torch.Tensor, bt: torch.Tensor) -> torch.Tensor:
    """a (m, k) int8 @ bt (k, n) int8 -> int32, exact. CUDA's kernel needs m > 16: pad."""
    m = a.shape[0]
    if a.is_cuda and m <= 16:
        a = torch.cat([a, a.new_zeros((17 - m, a.shape[1]))])
    return torch._int_mm(a, bt)[:m]


@nb.njit(cache=True, parallel=True)
def affine_bound(acc, sa, sb, rho, kappa, e1, f1, e2, f2, out):
    """out_ij = acc_ij σ_i σ'_j + ρ_i + κ_j − E1_i F1_j − E2_i F2_j in float32, in the order
    of the torch path (each operation rounded once): one pass instead of seven (CPU, one
    part, no exact tail: 8k decoder candidates 5.3 s -> see the bench)."""
    for a in nb.prange(acc.shape[0]):
        sa_, rho_, e1_, e2_ = sa[a], rho[a], e1[a], e2[a]
        for j in range(acc.shape[1]):
            t = np.float32(acc[a, j]) * sa_ * sb[j] + rho_ + kappa[j]
            out[a, j] = t - e1_ * f1[j] - e2_ * f2[j]


class LowerBound:
    """L_ij ≤ c_ij (module doc) for row blocks of c = xa @ xb.T, on `device`, by the int8 or
    float32 GEMM (`gemm`: auto | int8 | fp32; None: gemm.bound_gemm's choice)."""

    def __init__(self, xa, xb, exact_tail: int = 0, head_splits=(), device="cpu", gemm=None):
        self.n, D = xa.shape[0], xa.shape[1] - 2
        self.device = torch.device(device)
        self.gemm = bound_gemm(gemm, self.device)
        if self.gemm == "fp32":
            self._init_fp32(xa, xb, exact_tail, head_splits)
            return
        h = D - exact_tail
        parts = part_bounds(h, head_splits)
        self.qa, self.sa, da, qa, _ = quantise(xa, parts, self.device)
        qb, self.sb, db, qb_n, zb = quantise(xb, parts, self.device)
        if self.device.type == "cuda" and self.n % 8:  # CUDA's int8 GEMM: n a multiple of 8
            pad = _pad8(self.n) - self.n
            qb = [torch.cat([q, q.new_zeros((pad, q.shape[1]))]) for q in qb]
            self.sb = torch.cat([self.sb, self.sb.new_ones((pad, self.sb.shape[1]))])
        self.qbt = [q.T for q in qb]
        dev = self.device
        f32 = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=dev)  # noqa: E731
        self.ta, self.tb = f32(xa[:, h:D]), f32(xb[:, h:D])
        tmax = np.abs(xb[:, h:D]).max(0) if exact_tail else np.zeros(0, np.float32)
        r = xa[:, D].astype(np.float64)
        s = xb[:, D + 1].astype(np.float64)
        tail_err = 8 * EPS * (np.abs(xa[:, h:D]).astype(np.float64) @ tmax)
        slack = 1 + 4 * EPS  # norms stay upper bounds after the float32 cast
        # the norm terms r_i + s_j are added exactly later when `norms` (float64 frames)
        self.r, self.s = r, s
        self.rho_g = f32(-tail_err - 64 * EPS * np.abs(r))  # L − r_i − s_j: the g frame
        self.kappa_g = f32(-64 * EPS * np.abs(s))
        self.rho, self.kappa = f32(r) + self.rho_g, f32(s) + self.kappa_g
        self.E1, self.F1 = f32(da * slack), f32(zb * slack)  # ‖δ_i‖ ‖b_j‖
        self.E2, self.F2 = f32(qa * slack), f32((db + 8 * EPS * qb_n) * slack)
        self.fused = self._fused()

    def _init_fp32(self, xa, xb, exact_tail: int, head_splits) -> None:
        """The float32 backend's terms (module doc): the whole of z in one float32 GEMM."""
        D, dev = xa.shape[1] - 2, self.device
        f32 = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=dev)  # noqa: E731
        self.za, zb = f32(xa)[:, :D], f32(xb)[:, :D]  # CPU: views of the features, no copy
        self.zbt = zb.T  # (D, n) view
        E1, F1, E2, F2, eta_a, eta_b = fp32_terms(xa, xb, exact_tail, head_splits)
        r, s = xa[:, D].astype(np.float64), xb[:, D + 1].astype(np.float64)
        self.r, self.s = r, s
        slack = 1 + 4 * EPS  # norms stay upper bounds after the float32 cast
        self.rho_g = f32(-(eta_a + 64 * EPS * np.abs(r)) * slack)  # L − r_i − s_j: the g frame
        self.kappa_g = f32(-(eta_b + 64 * EPS * np.abs(s)) * slack)
        self.rho, self.kappa = f32(r) + self.rho_g, f32(s) + self.kappa_g
        self.E1, self.F1 = f32(E1 * slack), f32(F1 * slack)
        self.E2, self.F2 = f32(E2 * slack), f32(F2 * slack)
        self.sa = torch.ones((self.n, 1), dtype=torch.float32, device=dev)  # σ = σ' = 1: exact
        self.sb = torch.ones((self.n, 1), dtype=torch.float32, device=dev)
        self.fused = self._fused()

    def _fused(self):
        """numpy views for affine_bound (CPU; int8: one part, no tail), or None."""
        if self.device.type != "cpu":
            return None
        if self.gemm == "int8" and (len(self.qa) != 1 or self.ta.shape[1]):
            return None
        npy = lambda t: np.ascontiguousarray(t.numpy())  # noqa: E731
        return {
            "sa": npy(self.sa[:, 0]), "sb": npy(self.sb[:, 0]), "rho": npy(self.rho),
            "kappa": npy(self.kappa), "rho_g": npy(self.rho_g), "kappa_g": npy(self.kappa_g),
            "e1": npy(self.E1), "f1": npy(self.F1), "e2": npy(self.E2), "f2": npy(self.F2),
        }  # fmt: skip

    def g_bound_args(self) -> tuple:
        """The fused path's per-row and per-column terms of the g-frame bound, in the argument
        order of kernels.py: (σ, σ', ρ_g, κ_g, E1, F1, E2, F2)."""
        f = self.fused
        return (f["sa"], f["sb"], f["rho_g"], f["kappa_g"], f["e1"], f["f1"], f["e2"], f["f2"])

    def products(self, rows) -> np.ndarray:
        """The fused path's (`self.fused` not None) products (b, n): int32 q_i · q'_j (int8),
        or float32 ĝ_ij = fl32(a_i · b_j) (fp32)."""
        if self.gemm == "fp32":
            return fp32_mm(self.za[rows], self.zbt).numpy()
        return int8_matmul(self.qa[0][rows], self.qbt[0]).numpy()

    def estimate(self, rows) -> torch.Tensor:
        """ĝ[rows, :] (b, n) float32 on the device (module doc)."""
        if self.gemm == "fp32":
            return fp32_mm(self.za[rows], self.zbt)
        sa = self.sa[rows]
        est = None
        for p, (qa, qbt) in enumerate(zip(self.qa, self.qbt, strict=True)):
            part = int8_matmul(qa[rows], qbt)[:, : self.n].to(torch.float32)
            part.mul_(sa[:, p, None]).mul_(self.sb[None, : self.n, p])
            est = part if est is None else est.add_(part)
        if self.ta.shape[1]:
            est.addmm_(self.ta[rows], self.tb.T)
        return est

    def block(self, rows, norms: bool = True) -> torch.Tensor:
        """L[rows, :] (b, n) float32 on the device (rows: a slice or an index); norms=False:
        L − r_i − s_j, the bound on g_ij = c_ij − r_i − s_j."""
        if self.fused is not None:
            f = self.fused
            idx = rows if isinstance(rows, slice) else np.asarray(rows.cpu().numpy())
            acc = self.products(rows)
            out = np.empty(acc.shape, dtype=np.float32)
            rho, kappa = (f["rho"], f["kappa"]) if norms else (f["rho_g"], f["kappa_g"])
            affine_bound(
                acc, f["sa"][idx], f["sb"], rho[idx], kappa, f["e1"][idx], f["f1"],
                f["e2"][idx], f["f2"], out,
            )  # fmt: skip
            return torch.from_numpy(out)
        est = self.estimate(rows)
        rho, kappa = (self.rho, self.kappa) if norms else (self.rho_g, self.kappa_g)
        est.add_(rho[rows, None]).add_(kappa[None, :])
        est.addr_(self.E1[rows], self.F1, alpha=-1).addr_(self.E2[rows], self.F2, alpha=-1)
        return est

    def holds(self, xa, xb, m: int = 512, seed: int = 0) -> bool:
        """Spot check on random pairs and the diagonal: exact c ≥ L. Guards against a backend
        that computes other than assumed (the proof relies on the bound)."""
        g = np.random.default_rng(seed)
        n = self.n
        rows = np.unique(np.concatenate([g.integers(0, n, 8), [0]]))
        for i in rows:
            lb = self.block(slice(int(i), int(i) + 1))[0].double().cpu().numpy()
            j = np.concatenate([g.integers(0, n, m), [i]])
            c = xb[j].astype(np.float64) @ xa[i].astype(np.float64)
            if not np.all(c >= lb[j]):
                return False
        return True
