"""Matching costs between the features of two SAEs (docs/method.md §3, paper eq. 3).

Every mode is a squared Euclidean distance between per-feature vectors:

    decoder:  z_i = W_dec[i, :] / √d                      -> ‖z_A,i − z_B,j‖² = mean_d (ΔW_dec)²
    encoder:  z_i = W_enc[:, i] / √d                      -> mean_d (ΔW_enc)²
    both:     z_i = [W_dec[i]/√d, W_enc[:, i]/√d]            -> decoder + encoder (the paper's)

The paper matches on "MSE from both decoder and encoder" and never puts b_enc in the cost. An
extra b_enc term, w·(Δb_enc)², is a departure from the paper and only an explicit option
(`bias_weight` w > 0, default 0): it appends √w·b_enc[i] to z in mode both.

so c_ij = r_i + s_j − 2 z_A,i · z_B,j with r, s the squared norms. The solvers use the
*augmented* vectors x_i = [z_A,i, r_i, 1] and y_j = [−2 z_B,j, 1, s_j], for which one GEMM
gives the full cost: x_i · y_j = c_ij.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch

from saematch.sae import JumpReLUSAE, check_compatible

MODES = ("encoder", "decoder", "both")
SCORE_MODES = (*MODES, "bias")  # "bias" = (b_enc_A[i] − b_enc_B[j])², for Fig. 3's third curve


def check_mode(mode: str, allowed: tuple[str, ...] = MODES) -> None:
    """Raise ValueError unless mode is one of `allowed`."""
    if mode not in allowed:
        raise ValueError(f"unknown matching mode {mode!r}; choose one of {', '.join(allowed)}.")


def check_bias_weight(bias_weight: float, mode: str) -> float:
    """The b_enc term's weight w ≥ 0 in effect for `mode`: bias_weight in mode both, 0 in the
    others (they have no b_enc term). ValueError if negative or not finite."""
    bad = ValueError(f"matching.bias_weight must be a number ≥ 0, got {bias_weight!r}")
    try:
        w = float(bias_weight)
    except (TypeError, ValueError):
        raise bad from None
    if isinstance(bias_weight, bool) or not np.isfinite(w) or w < 0:
        raise bad
    return w if mode == "both" else 0.0


def feature_dim(d_model: int, mode: str, bias_weight: float = 0.0) -> int:
    """Length of the per-feature vector z for `mode` (+1 for the optional b_enc term)."""
    extra = int(mode == "both" and bias_weight > 0)
    return {"decoder": d_model, "encoder": d_model, "both": 2 * d_model}[mode] + extra


def cost_layout(d_model: int, mode: str, bias_weight: float = 0.0) -> dict:
    """How the solvers see z: exact_tail (trailing dims kept exact in the int8 cost: the b_enc
    term) and head_splits (decoder and encoder parts get their own int8 scales in mode both)."""
    both = mode == "both"
    return {"exact_tail": int(both and bias_weight > 0), "head_splits": (d_model,) * both}


@torch.no_grad()
def augmented_features(
    sae: JumpReLUSAE,
    mode: str,
    side: str,
    dtype=np.float32,
    fold: bool = False,
    bias_weight: float = 0.0,
) -> np.ndarray:
    """The augmented vectors (F, D + 2): side "a" -> [z, ‖z‖², 1]; side "b" -> [−2z, 1, ‖z‖²].

    x_a[i] · x_b[j] = c_ij (the mode's cost), so `xa @ xb.T` is the dense cost matrix.
    fold=True builds the features of sae.fold() (same values) without a folded copy of the
    SAE; otherwise the weights are used as given. bias_weight w > 0 (mode both only) appends
    √w·b_enc (folded: √w·b_enc/θ), adding w·(Δb_enc)² to the cost: a departure from the paper.
    """
    check_mode(mode)
    bias_weight = check_bias_weight(bias_weight, mode)
    if side not in ("a", "b"):
        raise ValueError(f"side must be 'a' or 'b', got {side!r}")
    F, d = sae.width, sae.d_model
    D = feature_dim(d, mode, bias_weight)
    tdt = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
    out = torch.empty((F, D + 2), dtype=tdt)
    th = sae.fold_threshold().detach().cpu() if fold else None
    scale = 1.0 / np.sqrt(d)
    col = 0
    if mode in ("decoder", "both"):
        w = sae.W_dec.detach().cpu()
        w = w * th[:, None] if fold else w  # folded in the SAE's dtype, as fold() does
        torch.mul(w.to(tdt), scale, out=out[:, col : col + d])
        col += d
    if mode in ("encoder", "both"):
        w = sae.W_enc.detach().cpu()
        for f0 in range(0, F, 64):  # transposed in blocks of 64 features: cache-friendly, 6x
            wb = w[:, f0 : f0 + 64]
            wb = wb / th[f0 : f0 + 64] if fold else wb
            torch.mul(wb.to(tdt).T, scale, out=out[f0 : f0 + 64, col : col + d])
        col += d
    if col < D:  # the optional b_enc term
        bias = sae.b_enc.detach().cpu()
        bias = (bias / th if fold else bias).to(torch.float64) * np.sqrt(bias_weight)
        out[:, col] = bias.to(tdt)
    return norm_slots(out, D, side)


def norm_slots(out: torch.Tensor, D: int, side: str) -> np.ndarray:
    """Fill the two last slots of (F, D + 2) features whose first D hold z, in place: a-side
    rows [z, ‖z‖², 1], b-side rows [−2z, 1, ‖z‖²] (so x_i · y_j = ‖z_i − z'_j‖²)."""
    res = out.numpy()
    z = res[:, :D]
    sq = np.einsum("ij,ij->i", z, z, dtype=np.float64)  # (F,) squared norms, accumulated in f64
    if side == "a":
        res[:, D], res[:, D + 1] = sq, 1.0
    else:
        out[:, :D].mul_(-2.0)
        res[:, D], res[:, D + 1] = 1.0, sq
    return res


def _perm_array(perm, n: int) -> np.ndarray:
    p = np.asarray(getattr(perm, "perm", perm))
    if p.shape != (n,) or not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"perm must be an integer array of shape ({n},), got {p.dtype} {p.shape}")
    if n and (p.min() < 0 or p.max() >= n or np.bincount(p, minlength=n).max() != 1):
        raise ValueError(
            "perm is not a bijection of range(width): some index repeats or is out of range"
        )
    return p.astype(np.int64, copy=False)


def pair_cost(
    a: JumpReLUSAE,
    b: JumpReLUSAE,
    perm,
    mode: str,
    chunk: int = 4096,
    bias_weight: float = 0.0,
) -> np.ndarray:
    """Per-pair cost (F,) float32 of pairing a's feature i with b's feature perm[i] (eq. 3).

    decoder: mean_d (W_dec_A[i] − W_dec_B[perm[i]])²; encoder: the same on W_enc columns;
    both: decoder + encoder (+ bias_weight·(Δb_enc)², a departure from the paper, off by
    default); bias: (b_enc_A[i] − b_enc_B[perm[i]])² alone (Fig. 3's third curve).
    Computed directly (float64) on the weights as given: pass a.fold(), b.fold() to score on
    folded weights. The identity permutation gives the "vanilla" cost.
    """
    check_compatible(a, b)
    check_mode(mode, SCORE_MODES)
    w = check_bias_weight(bias_weight, mode) if mode != "bias" else 1.0
    p = torch.as_tensor(_perm_array(perm, a.width))
    out = torch.zeros(a.width, dtype=torch.float64)
    for s in range(0, a.width, chunk):
        i, j = slice(s, s + chunk), p[s : s + chunk]
        if mode in ("decoder", "both"):
            diff = a.W_dec[i].cpu().double() - b.W_dec[j].cpu().double()  # (chunk, d)
            out[i] += diff.pow(2).mean(1)
        if mode in ("encoder", "both"):
            diff = a.W_enc[:, i].cpu().double() - b.W_enc[:, j].cpu().double()  # (d, chunk)
            out[i] += diff.pow(2).mean(0)
        if w > 0 and mode in ("both", "bias"):
            out[i] += w * (a.b_enc[i].cpu().double() - b.b_enc[j].cpu().double()).pow(2)
    return out.numpy().astype(np.float32)


@nb.njit(cache=True)
def _pair_sq_dist(xa, xb, p, D, out):
    for i in range(p.shape[0]):
        acc = 0.0
        for k in range(D):
            diff = np.float64(xa[i, k]) + 0.5 * np.float64(xb[p[i], k])  # side b stores −2z
            acc += diff * diff
        out[i] = acc


def pair_cost_features(xa: np.ndarray, xb: np.ndarray, perm) -> np.ndarray:
    """Per-pair cost (F,) float32 from augmented features: ‖z_A,i − z_B,perm[i]‖² (float64)."""
    p = _perm_array(perm, xa.shape[0])
    out = np.empty(len(p), dtype=np.float64)
    _pair_sq_dist(xa, xb, p, xa.shape[1] - 2, out)  # no float64 copies (0.5 s -> 0.05 s at 16k)
    return out.astype(np.float32)
