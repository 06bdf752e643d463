"""SAELens SAEs read from their on-disk format, without the sae-lens package.

A SAELens SAE is a folder (in a hub repo, the Hugging Face cache, or on disk):

    <sae folder>/cfg.json                 architecture, d_in, d_sae, dtype, apply_b_dec_to_input,
                                          normalize_activations and the hook name (top level
                                          before sae-lens 6: hook_point / hook_name; under
                                          "metadata" from sae-lens 6 on)
    <sae folder>/sae_weights.safetensors  W_enc (d_in, d_sae), b_enc (d_sae,), W_dec (d_sae, d_in),
                                          b_dec (d_in,); threshold (d_sae,) for JumpReLU
    <sae folder>/sparsity.safetensors     optional feature log-sparsity (not read)

SAELens encodes pre = (x − a·b_dec) @ W_enc + b_enc with a = apply_b_dec_to_input, then
    jumprelu:  f = relu(pre)·[pre > θ]        standard (ReLU):  f = relu(pre)
    topk:      f = relu(topk_k(pre))
and decodes x̂ = (f ⊙ s) @ W_dec + b_dec (s: an optional finetuning scaling factor). Each maps
exactly onto saematch's JumpReLUSAE (docs/method.md §1): b_enc' = b_enc − a·(b_dec @ W_enc),
W_dec' = s ⊙ W_dec, θ = 0 for ReLU and TopK (TopK keeps k; it has no θ to fold).
"""

from __future__ import annotations

import importlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from saematch.sae import JumpReLUSAE
from saematch.sources.gemma_scope import fetch_file

SAE_CFG = "cfg.json"
SAE_WEIGHTS = "sae_weights.safetensors"
ARCHITECTURES = ("jumprelu", "standard", "topk")
FOLDABLE = ("jumprelu",)  # only JumpReLU has a threshold θ > 0 to fold (docs/method.md §2)
# TransformerLens hook names -> saematch activation sites (saematch.lm.sites), with the block.
_HOOKS = "hook_resid_pre|hook_resid_post|hook_mlp_out|hook_attn_out|attn\\.hook_z"
_HOOK = re.compile(rf"^blocks\.(\d+)\.({_HOOKS})$")
_SITE = {"hook_resid_post": "resid_post", "hook_mlp_out": "mlp_out",
         "hook_attn_out": "attn_out", "attn.hook_z": "attn_z"}  # fmt: skip


@dataclass(frozen=True)
class SAELensConfig:
    """The fields of a SAELens cfg.json that decide how its weights map onto JumpReLUSAE."""

    architecture: str  # jumprelu | standard | topk
    d_in: int
    d_sae: int
    hook_name: str | None
    apply_b_dec_to_input: bool
    normalize_activations: str
    k: int | None = None  # topk only
    rescale_acts_by_decoder_norm: bool = False  # topk only
    hook_head_index: int | None = None

    @property
    def foldable(self) -> bool:
        """Whether the SAE has a threshold θ that folding can divide by."""
        return self.architecture in FOLDABLE


def parse_saelens_config(raw: dict, where: str = "cfg.json") -> SAELensConfig:
    """A SAELens cfg.json of either generation as a SAELensConfig; ValueError when saematch
    cannot represent the SAE exactly (gated, run-time input normalisation, per-head SAEs)."""
    if not isinstance(raw, dict) or "d_in" not in raw or "d_sae" not in raw:
        raise ValueError(
            f"{where} is not a SAELens cfg.json: it lacks d_in / d_sae "
            f"(keys: {sorted(raw) if isinstance(raw, dict) else type(raw).__name__})"
        )
    meta = raw.get("metadata") or {}
    hook = meta.get("hook_name") or raw.get("hook_name") or raw.get("hook_point")
    act = raw.get("activation_fn") or raw.get("activation_fn_str") or "relu"
    k = raw.get("k", (raw.get("activation_fn_kwargs") or {}).get("k"))
    arch = raw.get("architecture") or ("topk" if act == "topk" else "standard")
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"{where}: architecture {arch!r} is not supported; saematch reads "
            f"{', '.join(ARCHITECTURES)} SAEs (JumpReLU, ReLU, TopK)"
        )
    if arch != "topk" and act not in ("relu", "jumprelu"):
        raise ValueError(f"{where}: activation_fn {act!r}; only relu-based SAEs are exact here")
    if arch == "topk" and k is None:
        raise ValueError(f"{where}: a topk SAE needs k (or activation_fn_kwargs.k); it has none")
    norm = raw.get("normalize_activations")
    if isinstance(norm, bool):  # sae-lens < 6 wrote a bool
        norm = "expected_average_only_in" if norm else "none"
    norm = norm or "none"
    if norm != "none":
        raise ValueError(
            f"{where}: normalize_activations={norm!r} rescales the input at run time, which fixed "
            "weights cannot hold; saematch reads SAEs with normalize_activations 'none'"
        )
    head = meta.get("hook_head_index", raw.get("hook_head_index", raw.get("hook_point_head_index")))
    if head is not None:
        raise ValueError(f"{where}: a per-head SAE (hook_head_index={head}) is not supported")
    return SAELensConfig(
        architecture=str(arch),
        d_in=int(raw["d_in"]),
        d_sae=int(raw["d_sae"]),
        hook_name=hook,
        apply_b_dec_to_input=bool(raw.get("apply_b_dec_to_input", True)),  # sae-lens' default
        normalize_activations=norm,
        k=None if k is None else int(k),
        rescale_acts_by_decoder_norm=bool(raw.get("rescale_acts_by_decoder_norm", False)),
        hook_head_index=head,
    )


def hook_site(hook_name: str | None, where: str = "") -> tuple[str, int]:
    """(site, layer) of a TransformerLens hook name in saematch's terms (saematch.lm.sites).

    blocks.L.hook_resid_pre is the input of block L, i.e. resid_post of block L − 1; the input
    of block 0 is the embeddings, which no saematch site reads.
    """
    m = _HOOK.match(hook_name or "")
    if m is None:
        raise ValueError(
            f"{where or 'SAE'}: hook {hook_name!r} is not a site saematch reads; supported: "
            "blocks.L.hook_resid_pre / hook_resid_post / hook_mlp_out / hook_attn_out / attn.hook_z"
        )
    layer, hook = int(m.group(1)), m.group(2)
    if hook == "hook_resid_pre":
        if layer == 0:
            raise ValueError(
                f"{where or 'SAE'}: blocks.0.hook_resid_pre reads the embeddings, not a block's "
                "output; leave it out (start the set at layer 1)"
            )
        return "resid_post", layer - 1
    return _SITE[hook], layer


def read_saelens_config(path: str | os.PathLike) -> SAELensConfig:
    """parse_saelens_config of the cfg.json at `path` (a file, or the SAE's folder)."""
    path = Path(path)
    path = path / SAE_CFG if path.is_dir() else path
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); download it again") from e
    return parse_saelens_config(raw, str(path))


def sae_from_saelens_files(
    cfg_path: str | os.PathLike,
    weights_path: str | os.PathLike,
    *,
    name: str = "",
    meta: dict | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> JumpReLUSAE:
    """A JumpReLUSAE from a SAELens cfg.json and sae_weights.safetensors (module docstring)."""
    cfg = read_saelens_config(cfg_path)
    try:
        w = {k: v.float() for k, v in load_file(str(weights_path)).items()}
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{weights_path} is not a readable safetensors file ({e})") from e
    if "threshold" not in w and "log_threshold" in w:  # a JumpReLU training checkpoint
        w["threshold"] = w["log_threshold"].exp()
    need = ("W_enc", "b_enc", "W_dec", "b_dec") + (("threshold",) if cfg.foldable else ())
    missing = [k for k in need if k not in w]
    if missing:
        raise ValueError(
            f"{weights_path} lacks tensors {missing}; found {sorted(w)} (a {cfg.architecture} "
            f"SAELens SAE stores {list(need)})"
        )
    W_enc, b_enc, W_dec, b_dec = (
        w["W_enc"],
        w["b_enc"],
        w["W_dec"],
        w["b_dec"],
    )  # (d,F) (F,) (F,d) (d,)
    if tuple(W_enc.shape) != (cfg.d_in, cfg.d_sae):
        raise ValueError(
            f"{weights_path}: W_enc has shape {tuple(W_enc.shape)} but cfg.json says "
            f"(d_in, d_sae) = ({cfg.d_in}, {cfg.d_sae})"
        )
    threshold = w["threshold"] if cfg.foldable else torch.zeros_like(b_enc)
    if cfg.rescale_acts_by_decoder_norm:
        # topk(pre ⊙ n) then f / n before decoding (n_j = ‖W_dec_j‖): the same as scaling the
        # encoder by n and the decoder by 1/n, which is exact because relu and top-k commute
        # with a positive per-feature scale chosen before the top-k.
        n = W_dec.norm(dim=1)  # (F,)
        W_enc, b_enc, W_dec = W_enc * n, b_enc * n, W_dec / n[:, None]
    scale = w.get("scaling_factor", w.get("finetuning_scaling_factor"))
    if scale is not None:  # x̂ = (f ⊙ s) W_dec + b_dec = f (s ⊙ W_dec) + b_dec
        W_dec = W_dec * scale[:, None]
    if cfg.apply_b_dec_to_input:  # (x − b_dec) W_enc + b_enc = x W_enc + (b_enc − b_dec W_enc)
        b_enc = b_enc - b_dec @ W_enc
    info = {
        "source": "saelens",
        "architecture": cfg.architecture,
        "hook_name": cfg.hook_name,
        "foldable": cfg.foldable,
    }
    sae = JumpReLUSAE(
        W_enc, b_enc, W_dec, b_dec, threshold, name=name, meta={**info, **(meta or {})}, k=cfg.k
    )
    return sae.to(device=device, dtype=dtype)


def load_saelens_folder(
    repo_id: str | os.PathLike,
    folder: str,
    *,
    revision: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> JumpReLUSAE:
    """Load the SAELens SAE `<repo_id>/<folder>/` (a hub repo via the HF cache, or a local dir)."""
    folder = folder.strip("/")
    hub = {"revision": revision, "cache_dir": cache_dir, "local_files_only": local_files_only}
    prefix = f"{folder}/" if folder else ""
    cfg_path = fetch_file(repo_id, prefix + SAE_CFG, **hub)
    weights = fetch_file(repo_id, prefix + SAE_WEIGHTS, **hub)
    meta = {"repo_id": str(repo_id), "sae_id": folder}
    return sae_from_saelens_files(
        cfg_path, weights, name=f"{repo_id}/{folder}", meta=meta, device=device, dtype=dtype
    )


def _import_sae_lens():
    try:
        return importlib.import_module("sae_lens")
    except ImportError as e:
        raise ImportError(
            "naming a SAELens release needs the optional package sae-lens for its release -> "
            "repository table: `pip install sae-lens` (or `pip install 'saematch[saelens]'`). "
            "Without it, name the hub repository and folder directly (release=<org/repo>, ids= "
            "folders in it) or a local folder of SAELens SAEs."
        ) from e


def release_directory() -> dict:
    """sae-lens' table of pretrained releases {release: lookup with repo_id, saes_map, …}."""
    _import_sae_lens()
    for where in ("loading", "toolkit"):  # sae-lens 6, then older
        mod = f"sae_lens.{where}.pretrained_saes_directory"
        try:
            return importlib.import_module(mod).get_pretrained_saes_directory()
        except ImportError:
            continue
    raise ImportError("this sae-lens has no get_pretrained_saes_directory; upgrade it")


def resolve_release(release: str | os.PathLike) -> tuple[str, dict[str, str] | None]:
    """(repository, {sae id: folder} or None) of `release`.

    A local folder or a hub repo id (`org/name`) is its own repository (ids are folders in it);
    any other name is a SAELens release, looked up in sae-lens' table (needs sae-lens).
    """
    rel = str(release)
    if Path(rel).expanduser().is_dir():
        return str(Path(rel).expanduser()), None
    if "/" in rel:
        return rel, None
    table = release_directory()
    if rel not in table:
        near = sorted(r for r in table if rel.split("-")[0] in r)[:8]
        raise ValueError(f"no SAELens release {rel!r}; similar: {near or sorted(table)[:8]}")
    info = table[rel]
    if getattr(info, "conversion_func", None):
        raise ValueError(
            f"SAELens release {rel!r} is not stored in SAELens' format (it converts with "
            f"{info.conversion_func!r}); Gemma Scope and Llama Scope have their own sets "
            "(saes=gemma_scope_*, saes=llama_scope_*)"
        )
    return str(info.repo_id), dict(info.saes_map)


def load_saelens(
    release: str | os.PathLike,
    sae_id: str,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    revision: str | None = None,
) -> JumpReLUSAE:
    """Load SAE `sae_id` of `release` (a SAELens release name, a hub repo, or a local folder)."""
    repo, saes = resolve_release(release)
    if saes is not None and sae_id not in saes:
        have = sorted(saes)[:12]
        raise ValueError(f"SAELens release {release!r} has no id {sae_id!r}; it has {have}")
    folder = sae_id if saes is None else saes[sae_id]
    sae = load_saelens_folder(repo, folder, revision=revision, device=device, dtype=dtype)
    sae.meta["release"] = str(release)
    return sae
