"""Per-block activation sites of a decoder LM: where module SAEs read, and how to hook them.

The blocks come from saematch.lm.arch (any supported family); attn_out and mlp_out work in
every family (the attention sublayer is self_attn, attn or attention), attn_z where the
attention has an o_proj (Llama, Gemma, Qwen, Mistral).

Sites of block l (Hugging Face module names; Gemma 2 applies an RMSNorm *after* each sublayer):

    resid_post   output of `layers[l]` (the residual stream after the block)
    attn_z       input of `layers[l].self_attn.o_proj`: the concatenated per-head attention
                 outputs before the output projection, (…, n_heads · head_dim). Gemma Scope's
                 `att` SAEs read this (TransformerLens `attn.hook_z`, flattened).
    attn_out     what the attention sublayer adds to the residual stream, (…, d_model):
                 Gemma 2 `post_attention_layernorm(o_proj(z))`; Llama `o_proj(z)`
                 (Llama Scope `LXA`, `hook_attn_out`).
    mlp_out      what the MLP sublayer adds to the residual stream, (…, d_model): Gemma 2
                 `post_feedforward_layernorm(mlp(·))` (Gemma Scope `mlp`, `hook_mlp_out`);
                 Llama `mlp(·)` (Llama Scope `LXM`).

So for Gemma 2: resid_post[l] = resid_post[l−1] + attn_out[l] + mlp_out[l].
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

SITES = ("resid_post", "attn_z", "attn_out", "mlp_out")
RESIDUAL_SPACE_SITES = ("resid_post", "attn_out", "mlp_out")  # vectors of size d_model
ATTN_NAMES = ("self_attn", "attn", "attention")


def check_site(site: str) -> str:
    """`site` if it is one of SITES, else a ValueError naming them."""
    if site not in SITES:
        raise ValueError(f"unknown activation site {site!r}; choose one of {SITES}")
    return site


def site_hook_point(block: nn.Module, site: str) -> tuple[nn.Module, bool]:
    """(module, read_input): the module whose output (or, if read_input, first input) is `site`."""
    check_site(site)
    if site == "resid_post":
        return block, False
    # the attention sublayer: self_attn (Llama, Gemma, Qwen, Mistral), attn (GPT-2),
    # attention (GPT-NeoX); its first output is what it adds to the residual stream
    attn = next((getattr(block, a) for a in ATTN_NAMES if hasattr(block, a)), None)
    if site == "attn_z":
        proj = getattr(attn, "o_proj", None)
        if proj is None:
            raise ValueError(f"{type(block).__name__} has no self_attn.o_proj; no attn_z site.")
        return proj, True
    post = "post_attention_layernorm" if site == "attn_out" else "post_feedforward_layernorm"
    sub = attn if site == "attn_out" else getattr(block, "mlp", None)
    # Gemma 2 normalises each sublayer's output before adding it; Llama's
    # post_attention_layernorm is the *pre*-MLP norm, so only a block that also has
    # post_feedforward_layernorm uses the sandwich layout.
    if hasattr(block, "post_feedforward_layernorm") and hasattr(block, post):
        return getattr(block, post), False
    if sub is None:
        raise ValueError(
            f"{type(block).__name__} has no {'self_attn' if site == 'attn_out' else 'mlp'}."
        )
    return sub, False


def _first(o):
    return o[0] if isinstance(o, tuple) else o


@contextmanager
def capture_sites(
    layers: Sequence[nn.Module], want: Sequence[tuple[str, int]]
) -> Iterator[dict[tuple[str, int], list[Tensor]]]:
    """Record every forward's activations at (site, layer) pairs: {key: [tensor per call]}."""
    got: dict[tuple[str, int], list[Tensor]] = {k: [] for k in want}
    handles = []
    for site, layer in want:
        module, read_input = site_hook_point(layers[layer], site)
        key = (site, layer)
        if read_input:

            def pre(_m, args, key=key):
                got[key].append(args[0].detach())

            handles.append(module.register_forward_pre_hook(pre))
        else:

            def post(_m, _args, out, key=key):
                got[key].append(_first(out).detach())

            handles.append(module.register_forward_hook(post))
    try:
        yield got
    finally:
        for h in handles:
            h.remove()


@contextmanager
def adding_to_resid(layers: Sequence[nn.Module], add: dict[int, Tensor]) -> Iterator[None]:
    """Add vector add[l] (d_model,) to resid_post of block l at every position, while active."""
    handles = []
    for layer, vec in add.items():

        def fn(_m, _args, out, vec=vec):
            h = _first(out)
            new = h + vec.to(device=h.device, dtype=h.dtype)
            return (new, *out[1:]) if isinstance(out, tuple) else new

        handles.append(layers[int(layer)].register_forward_hook(fn))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def o_proj_map(block: nn.Module) -> tuple[Tensor, Tensor | None]:
    """(W_O (d_model, n_heads·head_dim), gain (d_model,) or None) mapping attn_z into attn_out.

    attn_out = gain ⊙ (W_O z) / rms(W_O z) for Gemma 2 (post-attention RMSNorm; its gain is
    1 + weight), attn_out = W_O z for Llama (gain None). The 1/rms factor depends on the token,
    so a data-free map of a z-direction into the residual stream keeps gain ⊙ W_O z only.
    """
    attn = getattr(block, "self_attn", None)
    proj = getattr(attn, "o_proj", None)
    if proj is None:
        raise ValueError(f"{type(block).__name__} has no self_attn.o_proj.")
    W_O = proj.weight.detach().float().cpu()  # (d_model, H·hd)
    if getattr(proj, "bias", None) is not None:
        raise ValueError("o_proj has a bias; the linear z -> residual map would need it.")
    if hasattr(block, "post_feedforward_layernorm") and hasattr(block, "post_attention_layernorm"):
        norm = block.post_attention_layernorm
        w = norm.weight.detach().float().cpu()
        # Gemma's RMSNorm scales by (1 + weight); detect it rather than assume it.
        unit_offset = type(norm).__name__.startswith("Gemma")
        return W_O, (1.0 + w) if unit_offset else w
    return W_O, None


@torch.no_grad()
def z_to_residual(vectors: Tensor, W_O: Tensor, gain: Tensor | None = None) -> Tensor:
    """Map z-space rows (F, H·hd) into the residual stream: (gain ⊙ W_O v) for each row, (F, d)."""
    if vectors.shape[-1] != W_O.shape[1]:
        raise ValueError(
            f"z-space vectors have size {vectors.shape[-1]} but W_O maps {W_O.shape[1]} -> "
            f"{W_O.shape[0]}; is this SAE on attn_z of this model?"
        )
    out = vectors.float() @ W_O.T  # (F, d)
    return out if gain is None else out * gain
