"""SAE sets of the module sites (attention and MLP outputs) for the flow graph.

Gemma Scope 2B `att` SAEs read attn_z (the concatenated head outputs before o_proj), `mlp` SAEs
read mlp_out (after the post-MLP RMSNorm); Llama Scope `LXA`/`LXM` read the attention and MLP
outputs in the residual basis (saematch.lm.sites). Each spec carries its site, and loaded SAEs
have it in `meta["site"]`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from saematch.sources.gemma_scope import (
    GEMMA_SCOPE_2B_ATT_CANONICAL,
    GEMMA_SCOPE_2B_MLP_CANONICAL,
)
from saematch.sources.llama_scope import LLAMA_SCOPE_LXA_8X, LLAMA_SCOPE_LXM_8X
from saematch.sources.set_ids import Layers, gemma_scope_module_ids, llama_scope_module_ids
from saematch.sources.sets import SAESet

MODULE_SITES = {"att": "attn_z", "mlp": "mlp_out"}  # Gemma Scope repo suffix -> site
LLAMA_MODULE_SITES = {"lxa": ("A", "attn_out", LLAMA_SCOPE_LXA_8X),
                      "lxm": ("M", "mlp_out", LLAMA_SCOPE_LXM_8X)}  # fmt: skip


def gemma_scope_module_set(
    module: str,
    layers: Layers = None,
    *,
    repo_id: str | os.PathLike | None = None,
    sae_ids: Mapping[int, str] | None = None,
    revision: str | None = None,
) -> SAESet:
    """Gemma Scope 2B attention (`att`, on attn_z) or MLP (`mlp`, on mlp_out) SAEs.

    Default: the canonical width-16k SAE of every layer in `google/gemma-scope-2b-pt-{module}-
    canonical`; pass `repo_id="google/gemma-scope-2b-pt-att"` and `sae_ids` for another l0.
    """
    if module not in MODULE_SITES:
        raise ValueError(
            f"Gemma Scope module must be one of {sorted(MODULE_SITES)}, got {module!r}"
        )
    default = GEMMA_SCOPE_2B_ATT_CANONICAL if module == "att" else GEMMA_SCOPE_2B_MLP_CANONICAL
    ids = dict(sae_ids) if sae_ids else gemma_scope_module_ids(layers)
    return SAESet.from_ids(
        f"gemma_scope_{module}",
        "gemma_scope",
        repo_id or default,
        ids,
        revision=revision,
        description=f"Gemma Scope 2B {module} SAEs ({MODULE_SITES[module]}), width 16k",
        site=MODULE_SITES[module],
    )


def llama_scope_module_set(
    module: str,
    layers: Layers = None,
    *,
    repo_id: str | os.PathLike | None = None,
    revision: str | None = None,
) -> SAESet:
    """Llama Scope attention-output (`lxa`) or MLP-output (`lxm`) SAEs of Llama-3.1-8B, 8x."""
    if module not in LLAMA_MODULE_SITES:
        raise ValueError(f"Llama Scope module must be lxa or lxm, got {module!r}")
    letter, site, default = LLAMA_MODULE_SITES[module]
    return SAESet.from_ids(
        f"llama_scope_{module}",
        "llama_scope",
        repo_id or default,
        llama_scope_module_ids(letter, layers),
        revision=revision,
        description=f"Llama Scope {module.upper()}-8x ({site})",
        site=site,
    )


MODULE_SETS = {
    "gemma_scope_att": lambda layers=None, **kw: gemma_scope_module_set("att", layers, **kw),
    "gemma_scope_mlp": lambda layers=None, **kw: gemma_scope_module_set("mlp", layers, **kw),
    "llama_scope_lxa": lambda layers=None, **kw: llama_scope_module_set("lxa", layers, **kw),
    "llama_scope_lxm": lambda layers=None, **kw: llama_scope_module_set("lxm", layers, **kw),
}
