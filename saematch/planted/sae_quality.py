"""How well trained SAEs capture the planted world's features and their scales (docs/method.md §9).

Per layer t, with rep(j) the true feature SAE latent j represents (metrics.represented):

    recovery            share of true features some latent represents
    duplicates          (#latents with rep(j) ≠ none − #distinct true features represented) / F
    recall              median over represented latents j of P(f_j > 0 | a_rep(j) > 0), on
                        held-out tokens whose true activations are known
    theta_scale_corr    Pearson corr(log θ_j, log s_rep(j)) over represented latents: does θ
                        carry the feature's scale, as folding (eq. 4) assumes?
    theta_dup_corr      corr(log θ_j, #latents sharing rep(j))
    theta_over_scale    median θ_j / s_rep(j)

Across layers (pooled over adjacent pairs t → t+1): for every true feature i at t and every
successor c of i (persisting or split child) that both have a representing latent, the best one
(highest decoder cosine) of each:

    theta_succ_corr     corr(log θ_best(i), log θ_best(c))
    scale_succ_corr     corr(log s_i, log s_c): what the world would give with perfect θ
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from saematch.planted.metrics import REPRESENT_COS, represented, sae_recovery
from saematch.planted.world import World
from saematch.sae import JumpReLUSAE

MIN_ACTIVE = 5  # a latent's recall needs its true feature active on at least this many tokens


def _corr(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson correlation; nan with fewer than 3 points or a constant side."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def best_latents(W_dec: Tensor, directions: Tensor, min_cos: float = REPRESENT_COS) -> dict:
    """{true feature i: its latent of highest decoder cosine with u_i, if that is ≥ min_cos}."""
    dec = W_dec.float() / W_dec.float().norm(dim=-1, keepdim=True).clamp_min(1e-12)
    cos = dec @ directions.float().T  # (F, N)
    best, idx = cos.max(dim=0)  # per true feature
    pairs = enumerate(zip(best.tolist(), idx.tolist(), strict=True))
    return {i: int(j) for i, (c, j) in pairs if c >= min_cos}


def layer_quality(sae: JumpReLUSAE, world: World, t: int, x: Tensor, codes: Tensor) -> dict:
    """The per-layer numbers of the module docstring; x (n, d) held-out tokens of layer t and
    codes (n, N_t) their true activations (sample.sample_with_codes)."""
    rep = represented(sae.W_dec, world.directions[t])  # (F,)
    on = rep >= 0
    counts = Counter(rep[on].tolist())
    theta = sae.threshold.float()
    js = on.nonzero().squeeze(1)
    log_th = theta[js].clamp_min(1e-30).log().tolist()
    log_s = world.scales[t][rep[js]].log().tolist()
    dup = [counts[int(rep[j])] for j in js]
    with torch.no_grad():
        fires = sae.encode(x.float()) > 0  # (n, F)
    active = codes > 0  # (n, N_t)
    recall = []
    for j in js.tolist():
        a = active[:, rep[j]]
        if int(a.sum()) >= MIN_ACTIVE:
            recall.append(float((fires[:, j] & a).sum() / a.sum()))
    ratio = (theta[js] / world.scales[t][rep[js]]).tolist()
    return {
        "recovery": sae_recovery(sae.W_dec, world.directions[t]),
        "represented_latents": int(on.sum()),
        "duplicates": (int(on.sum()) - len(counts)) / sae.width,
        "recall": float(np.median(recall)) if recall else float("nan"),
        "theta_scale_corr": _corr(log_th, log_s),
        "theta_dup_corr": _corr(log_th, dup),
        "theta_over_scale": float(np.median(ratio)) if ratio else float("nan"),
    }


def successor_corr(saes: Sequence[JumpReLUSAE], world: World) -> dict:
    """theta_succ_corr and scale_succ_corr (module docstring), pooled over adjacent pairs, with
    the number of (feature, successor) pairs they rest on."""
    best = [best_latents(s.W_dec, world.directions[t]) for t, s in enumerate(saes)]
    th_a, th_b, s_a, s_b = [], [], [], []
    for t in range(len(saes) - 1):
        succ = world.successor[t].tolist()
        for i, children in enumerate(succ):
            for c in children:
                if c < 0 or i not in best[t] or c not in best[t + 1]:
                    continue
                th_a.append(float(saes[t].threshold[best[t][i]]))
                th_b.append(float(saes[t + 1].threshold[best[t + 1][c]]))
                s_a.append(float(world.scales[t][i]))
                s_b.append(float(world.scales[t + 1][c]))
    return {
        "theta_succ_corr": _corr(np.log(np.maximum(th_a, 1e-30)), np.log(np.maximum(th_b, 1e-30))),
        "scale_succ_corr": _corr(np.log(s_a), np.log(s_b)),
        "succ_pairs": len(th_a),
    }
