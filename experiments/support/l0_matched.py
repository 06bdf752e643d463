"""The l0-matched SAE set (App. A, Fig. 15): per layer the candidate whose l0 is closest to its
neighbours' (an exact DP over layers), and SAE Match pruning with it vs the default set."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from saematch.lm import chunks
from saematch.pruning import pruning_sweep, sae_match_replacement
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results
from saematch_experiments.support.sparsity_plots import plot_l0_matched


def measure_l0(lm, batch, layer: int, saes: Sequence, batch_size: int) -> list[float]:
    """Mean number of active features (f > 0) per metric token of each SAE at `layer`."""
    active, n = [0.0] * len(saes), 0
    for s in chunks(batch.input_ids.shape[0], batch_size):
        x = lm.resid_post(batch.input_ids[s], batch.attention_mask[s], layers=[layer])[0]
        mask = batch.metric_mask[s].to(x.device)
        n += int(mask.sum())
        for k, sae in enumerate(saes):
            active[k] += float((sae.encode(x[mask]) > 0).sum())  # (n, F) -> count
    return [a / n for a in active]


def l0_matched_choice(
    l0: Sequence[Sequence[float]], anchor: Sequence[float], weight: float
) -> tuple[list[int], float]:
    """Per layer the candidate k_t minimising (exactly, by DP over layers)

        J = Σ_t |log l0_t,k_t − log l0_t+1,k_t+1| + λ Σ_t |log l0_t,k_t − log anchor_t|

    (l0[t][k] of candidate k at layer t, anchor_t the default set's l0, λ = weight). The first
    sum is the total variation of the l0 profile (half of Σ_t |Δ to t−1| + |Δ to t+1|), in
    log units because the candidates are spaced geometrically; the anchor keeps the profile at
    the default sparsity level and breaks ties. Returns (choice, J).
    """
    logs = [np.log(np.maximum(np.asarray(r, dtype=np.float64), 1e-6)) for r in l0]
    anc = np.log(np.maximum(np.asarray(anchor, dtype=np.float64), 1e-6))
    cost = weight * np.abs(logs[0] - anc[0])  # (K_0,) best J of a path ending in k
    back = []
    for t in range(1, len(logs)):
        step = cost[:, None] + np.abs(logs[t - 1][:, None] - logs[t][None, :])  # (K_t-1, K_t)
        back.append(step.argmin(0))
        cost = step.min(0) + weight * np.abs(logs[t] - anc[t])
    k = [int(cost.argmin())]
    for b in reversed(back):
        k.append(int(b[k[-1]]))
    return k[::-1], float(cost.min())


def log_variation(l0: Sequence[float]) -> float:
    """Σ_t |log l0_t − log l0_t+1|: how bumpy an l0 profile over layers is."""
    v = np.log(np.maximum(np.asarray(l0, dtype=np.float64), 1e-6))
    return float(np.abs(np.diff(v)).sum())


def l0_matched_sets(ctx: Context, res: Results, cands: dict, kw: dict, weight: float) -> dict:
    """Fig. 15: pick the l0-matched set; prune every pair with it and with the default set.

    Adds the tables and the figure to `res`; returns the summary entries."""
    lm, batch, layers = ctx.lm, ctx.batch, ctx.layers
    sets = {"default": dict(ctx.saes)}
    l0 = {
        "default": [
            measure_l0(lm, batch, L, [sets["default"][L]], kw["batch_size"])[0] for L in layers
        ]
    }
    table = [[c["l0"] for c in cands[L]] for L in layers]
    choice, objective = l0_matched_choice(table, l0["default"], weight)
    chosen = [cands[L][k] for L, k in zip(layers, choice, strict=True)]
    sets["l0_matched"] = {c["layer"]: c["model"] or c["load"]().to(ctx.device) for c in chosen}
    l0["l0_matched"] = [c["l0"] for c in chosen]
    known = {c["fingerprint"]: c["sae"] for cs in cands.values() for c in cs}
    names = {  # a default SAE that is one of the candidates goes by the candidate's name
        "default": [
            known.get(sets["default"][L].fingerprint(), spec[0].sae_id)
            for L, spec in ctx.sae_set.entries.items()
        ],
        "l0_matched": [c["sae"] for c in chosen],
    }
    reps = {
        # folded matching, raw-unit transfer (docs/method.md §5), as layer_pruning and the sweep
        k: sae_match_replacement(saes, ctx.perms(fold=True, saes=saes))
        for k, saes in sets.items()
    }
    rows = pruning_sweep(lm, reps, batch.input_ids, batch.metric_mask, layers=layers[:-1], **kw)
    prune = [
        {"layer": r["layer"], "pruned_block": r["pruned_block"], "set": k, **v}
        for r in rows
        for k, v in r["methods"].items()
    ]
    profiles = [
        {"layer": L, "set": k, "sae": names[k][n], "l0": l0[k][n]}
        for k in sets
        for n, L in enumerate(layers)
    ]
    res.table("l0_profiles", profiles)
    res.table("l0_matched_pruning", prune)
    res.figures["l0_matched"] = plot_l0_matched(cands, profiles, prune)
    per_layer = {
        str(L): {"l0": {k: l0[k][n] for k in sets}, "sae": {k: names[k][n] for k in sets}}
        for n, L in enumerate(layers)
    }
    for r in rows:
        per_layer[str(r["layer"])] |= r["methods"]
    mean = {
        k: {
            m: float(np.mean([r["methods"][k][m] for r in rows]))
            for m in ("delta_loss", "explained_variance")
        }
        for k in sets
    }
    same = [c["fingerprint"] == sets["default"][c["layer"]].fingerprint() for c in chosen]
    return {
        "layers": per_layer,
        "l0_matched": {
            "rule": "exact DP: min Σ_t |Δ log l0| + λ Σ_t |log l0_t − log l0_t(default)|",
            "anchor_weight": weight,
            "objective": objective,
            "log_variation": {k: log_variation(v) for k, v in l0.items()},
            "same_as_default": all(same),
            "choice": names["l0_matched"],
            "mean": mean,
        },
    }
