"""The module SAEs (attention and MLP outputs) that go with the residual SAE set of a run.

The zoo's residual set gets the zoo's own module SAEs (built on first use); a Gemma Scope set
gets Gemma Scope `att`/`mlp` (canonical, width 16k), a Llama Scope set gets LXA/LXM. An explicit
set name (`gemma_scope_att`, `llama_scope_lxm`, …) and a repo (local mirror) override that.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from saematch.lm.sites import o_proj_map
from saematch.sae import JumpReLUSAE
from saematch.sources import resolve_set
from saematch_experiments.harness.context import Context

DEFAULT_SETS = {  # the residual set's target function -> (att set, mlp set)
    "gemma_scope_paper_set": ("gemma_scope_att", "gemma_scope_mlp"),
    "gemma_scope_canonical_set": ("gemma_scope_att", "gemma_scope_mlp"),
    "gemma_scope_sweep_set": ("gemma_scope_att", "gemma_scope_mlp"),
    "llama_scope_set": ("llama_scope_lxa", "llama_scope_lxm"),
}


@dataclass
class ModuleSAEs:
    """att and mlp SAEs per layer, their sites, and W_O maps for attn_z SAEs."""

    att: dict[int, JumpReLUSAE]
    mlp: dict[int, JumpReLUSAE]
    sites: dict[str, str]  # {"att": site, "mlp": site}
    o_proj: dict[int, tuple[Tensor, Tensor | None]]
    names: dict[str, str]  # {"att": set name, "mlp": set name}


def module_saes(
    ctx: Context,
    layers: list[int],
    *,
    att_set: str | None = None,
    mlp_set: str | None = None,
    att_repo: str | None = None,
    mlp_repo: str | None = None,
) -> ModuleSAEs:
    """Load the att and mlp SAEs of `layers` for the run's SAE set (see the module docstring)."""
    from saematch_experiments.harness.sae_sets import is_zoo_set
    from saematch_experiments.harness.targets import target

    kind = target(ctx.cfg.saes, "saes").__name__
    device = ctx.cfg.model.device
    if is_zoo_set(ctx.cfg) and att_set is None and mlp_set is None:
        from saematch.zoo.modules import load_module_sae

        att = {L: load_module_sae(ctx.zoo, "attn_z", L).to(device) for L in layers}
        mlp = {L: load_module_sae(ctx.zoo, "mlp_out", L).to(device) for L in layers}
        names = {"att": "zoo/attn_z", "mlp": "zoo/mlp_out"}
    else:
        d_att, d_mlp = DEFAULT_SETS.get(kind, (None, None))
        att_set, mlp_set = att_set or d_att, mlp_set or d_mlp
        if att_set is None or mlp_set is None:
            raise ValueError(
                f"no module SAEs are known for the SAE set {kind!r}: set experiment.att_set and "
                "experiment.mlp_set (gemma_scope_att, gemma_scope_mlp, llama_scope_lxa, "
                "llama_scope_lxm), and att_repo / mlp_repo for local copies"
            )
        sets = {}
        for key, name, repo in (("att", att_set, att_repo), ("mlp", mlp_set, mlp_repo)):
            sets[key] = resolve_set(name, list(layers), **({"repo_id": repo} if repo else {}))
        att = sets["att"].load_all(device=device)
        mlp = sets["mlp"].load_all(device=device)
        names = {"att": att_set, "mlp": mlp_set}
    sites = {
        k: next(iter(v.values())).meta.get("site", "?") for k, v in (("att", att), ("mlp", mlp))
    }
    o_proj = {}
    if sites["att"] == "attn_z":
        o_proj = {L: o_proj_map(ctx.lm.layers[L]) for L in layers}
    return ModuleSAEs(att, mlp, sites, o_proj, names)
