"""Optional: any JumpReLU (or ReLU) SAE from a sae-lens release, as a JumpReLUSAE.

sae-lens is not a dependency of saematch; it is imported only when `load_saelens` is called.
"""

from __future__ import annotations

import importlib

import torch

from saematch.sae import JumpReLUSAE


def _import_sae_lens():
    try:
        return importlib.import_module("sae_lens")
    except ImportError as e:
        raise ImportError(
            "load_saelens needs the optional package sae-lens: `pip install sae-lens`. "
            "Gemma Scope and Llama Scope SAEs load without it (load_gemma_scope, "
            "load_llama_scope)."
        ) from e


def _cfg_get(cfg, key: str, default=None):
    return cfg.get(key, default) if isinstance(cfg, dict) else getattr(cfg, key, default)


def _architecture(cfg) -> str:
    arch = _cfg_get(cfg, "architecture", "standard")
    return str(arch() if callable(arch) else arch)


def saelens_to_jumprelu(sae, *, name: str = "", meta: dict | None = None) -> JumpReLUSAE:
    """Convert a loaded sae-lens SAE (architecture "jumprelu" or "standard") to JumpReLUSAE.

    sae-lens encodes pre = (x − b_dec·a) @ W_enc + b_enc with a = apply_b_dec_to_input, so
    b_enc' = b_enc − a·(b_dec @ W_enc) gives the same pre-activation on raw x. sae-lens's
    relu(pre)·[pre > θ] equals pre·[pre > θ] for θ ≥ 0; a "standard" (ReLU) SAE gets θ = 0.
    """
    cfg = sae.cfg
    arch = _architecture(cfg)
    if arch not in ("jumprelu", "standard"):
        raise ValueError(
            f"sae-lens SAE {name!r} has architecture {arch!r}; only 'jumprelu' and 'standard' "
            "(ReLU) map onto JumpReLUSAE."
        )
    norm = _cfg_get(cfg, "normalize_activations", "none") or "none"
    if norm != "none":
        raise ValueError(
            f"sae-lens SAE {name!r} normalises its input at run time ({norm!r}); that cannot be "
            "folded into fixed weights. (sae-lens folds 'expected_average_only_in' itself when "
            "the release records norm_scaling_factor.)"
        )
    act = _cfg_get(cfg, "activation_fn", "relu")
    if act not in (None, "relu"):
        raise ValueError(f"sae-lens SAE {name!r} uses activation_fn {act!r}; only relu is exact.")
    with torch.no_grad():
        W_enc = sae.W_enc.detach().float().cpu()  # (d, F)
        b_enc = sae.b_enc.detach().float().cpu()  # (F,)
        W_dec = sae.W_dec.detach().float().cpu()  # (F, d)
        b_dec = sae.b_dec.detach().float().cpu()  # (d,)
        if arch == "jumprelu":
            threshold = sae.threshold.detach().float().cpu()
        else:
            threshold = torch.zeros_like(b_enc)
        if _cfg_get(cfg, "apply_b_dec_to_input", False):
            b_enc = b_enc - b_dec @ W_enc
    info = {
        "source": "saelens",
        "architecture": arch,
        "hook_name": _cfg_get(cfg, "hook_name"),
        "apply_b_dec_to_input": bool(_cfg_get(cfg, "apply_b_dec_to_input", False)),
    }
    return JumpReLUSAE(
        W_enc, b_enc, W_dec, b_dec, threshold, name=name, meta={**info, **(meta or {})}
    )


def load_saelens(
    release: str,
    sae_id: str,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> JumpReLUSAE:
    """Load `sae_id` of sae-lens `release` (its registry names) and convert it (needs sae-lens)."""
    sae_lens = _import_sae_lens()
    got = sae_lens.SAE.from_pretrained(release, sae_id, device="cpu")
    sae = got[0] if isinstance(got, tuple) else got  # sae-lens < 6 returned (sae, cfg, sparsity)
    out = saelens_to_jumprelu(
        sae, name=f"{release}/{sae_id}", meta={"release": release, "sae_id": sae_id}
    )
    return out.to(device=device, dtype=dtype)
