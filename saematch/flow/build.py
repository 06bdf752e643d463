"""Assemble a FlowGraph from residual and module SAEs (and, for attn_z SAEs, the model's W_O)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from saematch.flow.graph import (
    DEFAULT_THRESHOLD,
    FlowGraph,
    decoder_rows,
    flow_layer,
    provenance,
)
from saematch.lm.sites import RESIDUAL_SPACE_SITES, z_to_residual
from saematch.sae import JumpReLUSAE

ATT_MAP_NOTE = (
    "attn_z SAE decoder rows v (z-space, before o_proj) are compared as gain ⊙ (W_O v): W_O is "
    "o_proj.weight and gain the post-attention RMSNorm gain (1 + weight) in Gemma 2 (absent in "
    "Llama); the token-dependent 1/rms of that norm is left out, so folded-cost scores of att "
    "predecessors are in o_proj-output units, not the residual stream's"
)


def source_rows(
    sae: JumpReLUSAE, site: str, similarity: str, o_proj: tuple[Tensor, Tensor | None] | None
) -> Tensor:
    """Decoder rows (folded for folded_cost) of one source SAE in the residual stream (F, d)."""
    rows = decoder_rows(sae, similarity)
    if site in RESIDUAL_SPACE_SITES:
        return rows
    if site != "attn_z":
        raise ValueError(f"source SAE site {site!r} is not a known site")
    if o_proj is None:
        raise ValueError(
            f"{sae.name or 'an att SAE'} reads attn_z (before o_proj): the flow graph needs that "
            "layer's W_O (saematch.lm.sites.o_proj_map) to map its rows into the residual stream"
        )
    return z_to_residual(rows, *o_proj)


def build_flow_graph(
    res: Mapping[int, JumpReLUSAE],
    mlp: Mapping[int, JumpReLUSAE],
    att: Mapping[int, JumpReLUSAE],
    *,
    sites: Mapping[str, str] | None = None,
    o_proj: Mapping[int, tuple[Tensor, Tensor | None]] | None = None,
    similarity: str = "cosine",
    top_k: int = 3,
    threshold: float | None = None,
    null_seed: int | None = 0,
) -> FlowGraph:
    """The flow graph of every layer t with res(t−1), res(t), mlp(t) and att(t) present.

    `sites` gives the site of the mlp and att SAEs (default: mlp_out and attn_z, Gemma Scope's);
    `o_proj[t]` is (W_O, gain) of block t, needed when att reads attn_z. `null_seed` seeds the
    chance level (rotated source rows; None skips it).
    """
    sites = {"mlp": "mlp_out", "att": "attn_z", **(sites or {})}
    o_proj = o_proj or {}
    targets = [t for t in sorted(res) if t - 1 in res and t in mlp and t in att]
    if not targets:
        raise ValueError(
            f"no layer t has res(t−1), res(t), mlp(t) and att(t): res layers {sorted(res)}, "
            f"mlp {sorted(mlp)}, att {sorted(att)}"
        )
    layers, saes = [], {}
    for t in targets:
        src = {
            "res": decoder_rows(res[t - 1], similarity),
            "mlp": source_rows(mlp[t], sites["mlp"], similarity, o_proj.get(t)),
            "att": source_rows(att[t], sites["att"], similarity, o_proj.get(t)),
        }
        layers.append(flow_layer(t, res[t], src, similarity=similarity, top_k=top_k,
                                 threshold=threshold, null_seed=null_seed))  # fmt: skip
        saes[f"res/{t - 1}"] = provenance(res[t - 1], "resid_post")
        saes[f"res/{t}"] = provenance(res[t], "resid_post")
        saes[f"mlp/{t}"] = provenance(mlp[t], sites["mlp"])
        saes[f"att/{t}"] = provenance(att[t], sites["att"])
    used = DEFAULT_THRESHOLD[similarity] if threshold is None else float(threshold)
    notes = {"att_map": ATT_MAP_NOTE} if sites["att"] == "attn_z" else {}
    return FlowGraph(layers, similarity, int(top_k), used, saes, notes)
