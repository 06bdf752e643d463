"""Write SAELens SAE folders in the published layouts (cfg.json + sae_weights.safetensors).

The cfg.json keys follow what sae-lens writes and reads: sae-lens < 6 (e.g.
jbloom/GPT2-Small-SAEs-Reformatted: hook_point, no architecture, so "standard" with
apply_b_dec_to_input defaulting to true; TopK as activation_fn_str "topk" with
activation_fn_kwargs.k) and sae-lens 6 (architecture, k, hook name under "metadata").
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file


def saelens_cfg(arch: str, hook: str, d_in: int, d_sae: int, k: int = 4, style: str = "6") -> dict:
    """A cfg.json of `arch` (jumprelu | standard | topk) in sae-lens 6 or pre-6 ("5") style."""
    if style == "5":
        cfg = {"model_name": "gpt2-small", "hook_point": hook,
               "hook_point_layer": int(hook.split(".")[1]), "hook_point_head_index": None,
               "dataset_path": "Skylion007/openwebtext", "context_size": 128, "d_in": d_in,
               "d_sae": d_sae, "dtype": "torch.float32", "device": "mps",
               "expansion_factor": d_sae // d_in, "lr": 0.0004}  # fmt: skip
        if arch == "topk":
            cfg |= {"activation_fn_str": "topk", "activation_fn_kwargs": {"k": k}}
        elif arch == "jumprelu":
            cfg |= {"architecture": "jumprelu", "apply_b_dec_to_input": False}
        return cfg
    cfg = {"architecture": arch, "d_in": d_in, "d_sae": d_sae, "dtype": "float32",
           "device": "cpu", "apply_b_dec_to_input": arch != "jumprelu",
           "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"model_name": "gpt2", "hook_name": hook, "hook_head_index": None,
                        "prepend_bos": True, "context_size": 1024,
                        "sae_lens_version": "6.12.1"}}  # fmt: skip
    if arch == "topk":
        cfg["k"] = k
    return cfg


def saelens_weights(d_in: int, d_sae: int, arch: str, seed: int) -> dict[str, torch.Tensor]:
    """Random SAELens weights (W_enc (d_in, d_sae), …, threshold for jumprelu)."""
    g = torch.Generator().manual_seed(seed)
    w = {
        "W_enc": torch.randn(d_in, d_sae, generator=g) / d_in**0.5,
        "b_enc": torch.randn(d_sae, generator=g) * 0.1,
        "W_dec": torch.randn(d_sae, d_in, generator=g) / d_in**0.5,
        "b_dec": torch.randn(d_in, generator=g) * 0.1,
    }
    if arch == "jumprelu":
        w["threshold"] = 0.05 + 0.3 * torch.rand(d_sae, generator=g)
    return w


def write_saelens_sae(folder: Path, cfg: dict, weights: dict[str, torch.Tensor]) -> Path:
    """folder/cfg.json and folder/sae_weights.safetensors (and a sparsity file, as published)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file(
        {k: v.contiguous() for k, v in weights.items()}, str(folder / "sae_weights.safetensors")
    )
    save_file({"sparsity": torch.full((cfg["d_sae"],), -3.0)}, str(folder / "sparsity.safetensors"))
    return folder


def write_release(
    root: Path, arch: str, hooks: list[str], d_in: int, d_sae: int, style="6"
) -> Path:
    """One SAELens folder per hook name, named by it (as in jbloom/GPT2-Small-SAEs-Reformatted)."""
    for i, hook in enumerate(hooks):
        cfg = saelens_cfg(arch, hook, d_in, d_sae, style=style)
        write_saelens_sae(root / hook, cfg, saelens_weights(d_in, d_sae, arch, seed=i))
    return root


def hub_cache_repo(hub: Path, repo_id: str, revision: str = "0" * 40) -> Path:
    """The snapshot folder of repo_id in a Hugging Face cache at `hub` (refs/main points to it)."""
    base = hub / f"models--{repo_id.replace('/', '--')}"
    (base / "refs").mkdir(parents=True, exist_ok=True)
    (base / "refs" / "main").write_text(revision)
    snap = base / "snapshots" / revision
    snap.mkdir(parents=True, exist_ok=True)
    return snap


def saelens_forward(cfg: dict, w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """SAELens' own encode/decode of cfg's architecture, written out (the reference)."""
    arch = cfg.get("architecture") or (
        "topk" if cfg.get("activation_fn_str") == "topk" else "standard"
    )
    a = cfg.get("apply_b_dec_to_input", True)
    pre = (x - w["b_dec"] * a) @ w["W_enc"] + w["b_enc"]
    if arch == "jumprelu":
        f = torch.relu(pre) * (pre > w["threshold"])
    elif arch == "topk":
        k = cfg.get("k") or cfg["activation_fn_kwargs"]["k"]
        vals, idx = pre.topk(k, dim=-1)
        f = torch.zeros_like(pre).scatter(-1, idx, vals.relu())
    else:
        f = torch.relu(pre)
    return f @ w["W_dec"] + w["b_dec"]
