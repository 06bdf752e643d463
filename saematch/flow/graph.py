"""A data-free feature flow graph: where each residual feature of layer t comes from.

For every feature i of the residual SAE at layer t (target row r_i ∈ R^d) and every source
SAE s ∈ {res(t−1), mlp(t), att(t)} with rows u_j mapped into the residual stream, a score:

    cosine:       S_ij = ⟨r_i, u_j⟩ / (‖r_i‖ ‖u_j‖)                 (Feature Flow)
    folded_cost:  S_ij = 1 − ‖r'_i − u'_j‖² / ‖r'_i‖²               (SAE Match, eq. 3-4)

where r'_i = θ_i W_dec[i] is the folded decoder row. For a fixed target, ranking by the folded
score is ranking by SAE Match's decoder cost mean_d (r'_i − u'_j)² (eq. 3), so the top-1 res
predecessor is the nearest folded decoder row; the division by ‖r'_i‖² only makes one threshold
fit every target (S = 0 when u'_j is as far from r'_i as the zero vector; with equal norms
S = 2 cos − 1). Rows of an attn_z SAE (Gemma Scope `att`) live in z-space and are mapped first:
u = gain ⊙ W_O v (saematch.lm.sites.z_to_residual).

Per target and source the top_k sources are kept with their scores; those with S ≥ τ are the
graph's edges (the rest stay as candidates, for ranking and validation). The origin of feature
i, from the best score per source b_res, b_mlp, b_att:

    persisting            b_res ≥ τ
    created by MLP        b_res < τ, b_mlp ≥ τ, b_mlp ≥ b_att
    created by attention  b_res < τ, b_att ≥ τ, b_att > b_mlp
    unclear               every b < τ

Chance level: the same best score against the source rows turned by one random rotation Q
(u_j -> Q u_j, Q Haar-orthogonal, seeded). Both dictionaries keep their own geometry (norms,
anisotropy) and lose only their alignment with each other, so the share of targets whose
null best score reaches τ estimates how many edges threshold τ admits by chance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from saematch.sae import JumpReLUSAE

SIMILARITIES = ("cosine", "folded_cost")
SOURCES = ("res", "mlp", "att")  # res(t−1), mlp(t), att(t)
ORIGINS = ("persisting", "mlp", "attention", "unclear")  # origin codes 0..3
DEFAULT_THRESHOLD = {"cosine": 0.5, "folded_cost": 0.5}


def check_similarity(similarity: str) -> str:
    """`similarity` if known, else a ValueError naming the choices."""
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    return similarity


def decoder_rows(sae: JumpReLUSAE, similarity: str) -> Tensor:
    """Rows compared by `similarity`: folded decoder rows θ_j W_dec[j] (F, d), float32."""
    W = sae.W_dec.detach().float().cpu()
    if similarity == "cosine":
        return W  # scale-free: folding does not change a cosine
    return W * sae.fold_threshold().detach().float().cpu()[:, None]  # eq. 4


@torch.no_grad()
def top_predecessors(
    target: Tensor, source: Tensor, similarity: str, top_k: int, block: int = 2048
) -> tuple[Tensor, Tensor]:
    """(index (F, k) int64, score (F, k) float32): each target row's k best source rows."""
    check_similarity(similarity)
    if target.shape[1] != source.shape[1]:
        raise ValueError(
            f"target rows have size {target.shape[1]}, source rows {source.shape[1]}: both "
            "must be in the residual stream (map attn_z rows through W_O first)"
        )
    k = min(int(top_k), source.shape[0])
    if k < 1:
        raise ValueError(f"top_k must be ≥ 1, got {top_k}")
    t, s = target.float(), source.float()
    if similarity == "cosine":
        t = t / t.norm(dim=1, keepdim=True).clamp_min(1e-12)
        s = s / s.norm(dim=1, keepdim=True).clamp_min(1e-12)
    s_sq = s.pow(2).sum(1)  # (F_s,)
    idx, val = [], []
    for a in range(0, t.shape[0], block):
        tb = t[a : a + block]  # (b, d)
        dots = tb @ s.T  # (b, F_s)
        if similarity == "folded_cost":  # 1 − ‖r − u‖² / ‖r‖² = (2 r·u − ‖u‖²) / ‖r‖²
            t_sq = tb.pow(2).sum(1, keepdim=True).clamp_min(1e-30)
            dots = (2 * dots - s_sq) / t_sq
        v, i = dots.topk(k, dim=1)
        idx.append(i)
        val.append(v)
    return torch.cat(idx), torch.cat(val)


def random_rotation(d: int, generator: torch.Generator) -> Tensor:
    """A Haar-random orthogonal (d, d) matrix (QR of a Gaussian, signs fixed)."""
    q, r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).float()


def chance_best(
    target: Tensor, source: Tensor, similarity: str, generator: torch.Generator
) -> Tensor:
    """(F,) each target's best score against randomly rotated source rows (the null level)."""
    rotated = source.float() @ random_rotation(source.shape[1], generator).T
    return top_predecessors(target, rotated, similarity, 1)[1][:, 0]


def classify(best: dict[str, Tensor], threshold: float) -> Tensor:
    """Origin code (F,) int8 from the best score per source (module docstring's rule)."""
    res, mlp, att = (best[s] for s in SOURCES)
    origin = torch.full_like(res, ORIGINS.index("unclear"), dtype=torch.int8)
    att_wins = (att >= threshold) & (att > mlp)
    mlp_wins = (mlp >= threshold) & (mlp >= att)
    origin[att_wins] = ORIGINS.index("attention")
    origin[mlp_wins] = ORIGINS.index("mlp")
    origin[res >= threshold] = ORIGINS.index("persisting")
    return origin


@dataclass
class FlowLayer:
    """Predecessors of every residual feature of one layer t."""

    layer: int
    index: dict[str, Tensor]  # source -> (F, k) int64 top-k source ids, best first
    score: dict[str, Tensor]  # source -> (F, k) float32 their scores, descending
    origin: Tensor  # (F,) int8 codes into ORIGINS
    null_best: dict[str, Tensor] = field(default_factory=dict)  # source -> (F,) chance level

    def edges(self, source: str, threshold: float) -> Tensor:
        """(F, k) bool: which of the top-k candidates are edges (score ≥ threshold)."""
        return self.score[source] >= threshold

    def best(self, source: str) -> Tensor:
        """(F,) the best score from `source`."""
        return self.score[source][:, 0]

    def shares(self) -> dict[str, float]:
        """Fraction of features of each origin."""
        n = max(1, self.origin.numel())
        return {o: float((self.origin == c).sum()) / n for c, o in enumerate(ORIGINS)}


@dataclass
class FlowGraph:
    """Flow layers plus the settings and SAE provenance that made them."""

    layers: list[FlowLayer]
    similarity: str
    top_k: int
    threshold: float
    saes: dict[str, dict] = field(default_factory=dict)  # "res/5", "mlp/5", ... -> provenance
    notes: dict[str, str] = field(default_factory=dict)

    def layer(self, t: int) -> FlowLayer:
        """The flow layer of target layer t."""
        for fl in self.layers:
            if fl.layer == t:
                return fl
        raise KeyError(f"the graph has target layers {[f.layer for f in self.layers]}, not {t}")

    def predecessors(self, t: int, feature: int) -> list[tuple[str, float]]:
        """[(node id, score)] of residual feature `feature` at layer t above the threshold.

        Node ids: `res/<t−1>/<j>`, `mlp/<t>/<j>`, `att/<t>/<j>`.
        """
        fl = self.layer(t)
        out = []
        for s in SOURCES:
            src_layer = t - 1 if s == "res" else t
            for j, v in zip(fl.index[s][feature].tolist(), fl.score[s][feature].tolist(),
                            strict=True):  # fmt: skip
                if v >= self.threshold:
                    out.append((f"{s}/{src_layer}/{j}", float(v)))
        return sorted(out, key=lambda x: -x[1])


def provenance(sae: JumpReLUSAE, site: str) -> dict:
    """What identifies one SAE of the graph: name, site, width, content hash."""
    return {"name": sae.name, "site": site, "width": sae.width, "fingerprint": sae.fingerprint()}


def flow_layer(
    layer: int,
    target: JumpReLUSAE,
    sources: dict[str, Tensor],
    *,
    similarity: str = "cosine",
    top_k: int = 3,
    threshold: float | None = None,
    null_seed: int | None = 0,
) -> FlowLayer:
    """Predecessors of `target`'s features among source rows {res, mlp, att} (residual space);
    with null_seed, also the chance level of each source (rotated rows; None skips it)."""
    check_similarity(similarity)
    missing = [s for s in SOURCES if s not in sources]
    if missing:
        raise ValueError(f"flow_layer needs source rows for {SOURCES}; missing {missing}")
    tau = DEFAULT_THRESHOLD[similarity] if threshold is None else float(threshold)
    rows = decoder_rows(target, similarity)
    index, score = {}, {}
    for s in SOURCES:
        index[s], score[s] = top_predecessors(rows, sources[s], similarity, top_k)
    origin = classify({s: score[s][:, 0] for s in SOURCES}, tau)
    null = {}
    if null_seed is not None:
        g = torch.Generator().manual_seed(int(null_seed) * 1009 + int(layer))
        null = {s: chance_best(rows, sources[s], similarity, g) for s in SOURCES}
    return FlowLayer(layer, index, score, origin, null)
