"""Llama Scope SAEs (`fnlp/Llama3_1-8B-Base-LX{R,A,M}-{8,32}x`) converted to the JumpReLUSAE layout.

A folder `Llama3_1-8B-Base-L{L}R-8x` holds `hyperparams.json` and
`checkpoints/final.safetensors` with `encoder.weight` E (F, d), `encoder.bias` b_E (F,),
`decoder.weight` D (d, F), `decoder.bias` b_D (d,). The SAE was trained on inputs rescaled to
average norm sqrt(d); that scale and its scalar JumpReLU threshold are folded in at load time,
with the same conversion as sae-lens (see `convert_llama_scope`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from saematch.sae import JumpReLUSAE
from saematch.sources.gemma_scope import fetch_file

LLAMA_SCOPE_LXR_8X = "fnlp/Llama3_1-8B-Base-LXR-8x"
LLAMA_SCOPE_LXA_8X = "fnlp/Llama3_1-8B-Base-LXA-8x"  # attention output (after o_proj)
LLAMA_SCOPE_LXM_8X = "fnlp/Llama3_1-8B-Base-LXM-8x"  # MLP output
HYPERPARAMS_FILE = "hyperparams.json"
WEIGHTS_FILE = "checkpoints/final.safetensors"
LLAMA_SCOPE_KEYS = ("encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias")
ROWS = 1024  # rows rescaled at once (float64 block: ROWS x 4096 x 8 B = 32 MB at d_model 4096)


def llama_scope_folder(layer: int, *, site: str = "R", expansion: int = 8) -> str:
    """Folder of one Llama Scope SAE, e.g. `Llama3_1-8B-Base-L20R-8x` (R = resid_post)."""
    return f"Llama3_1-8B-Base-L{int(layer)}{site}-{int(expansion)}x"


def norm_scaling_factor(hyperparams: dict) -> float:
    """s = sqrt(d_model) / dataset_average_activation_norm["in"] (input rescale of training)."""
    try:
        d = int(hyperparams["d_model"])
        norms = hyperparams["dataset_average_activation_norm"]
        n_in = float(norms["in"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            "Llama Scope hyperparams need d_model and dataset_average_activation_norm "
            f'{{"in": ..., "out": ...}}; got keys {sorted(hyperparams)} ({e!r})'
        ) from e
    n_out = float(norms.get("out", n_in))
    if not (math.isfinite(n_in) and n_in > 0):
        raise ValueError(f"dataset_average_activation_norm['in'] = {n_in}; must be > 0.")
    if not math.isclose(n_in, n_out, rel_tol=1e-6):
        raise ValueError(
            f"dataset_average_activation_norm in={n_in} != out={n_out}: this is a transcoder "
            "(input and output at different sites), not an SAE on one residual site; the "
            "single-factor conversion would rescale its output wrongly."
        )
    return math.sqrt(d) / n_in


def convert_llama_scope(
    state: dict[str, torch.Tensor],
    hyperparams: dict,
    *,
    name: str = "",
    meta: dict | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> JumpReLUSAE:
    """Fold Llama Scope's input normalisation and scalar threshold into a JumpReLUSAE.

    With s = sqrt(d_model) / n_in (n_in = dataset_average_activation_norm["in"]) and
    θ_hp = hyperparams["jump_relu_threshold"], the Llama Scope forward on model activations x is

        pre = (s·x) @ Eᵀ + b_E;   f = pre · [pre > s·θ_hp];   x̂ = (f @ Dᵀ + b_D) / s

    which is exactly JumpReLUSAE with

        W_enc = s·Eᵀ,  b_enc = b_E,  θ = s·θ_hp (every feature),  W_dec = Dᵀ/s,  b_dec = b_D/s.

    Why each factor: (s·x) @ Eᵀ = x @ (s·Eᵀ), so scaling W_enc by s feeds the encoder the
    normalised input it was trained on; b_E already lives in that normalised space and is kept,
    so pre-activations and feature values equal the native ones. The reconstruction is in the
    normalised space too, so W_dec and b_dec are divided by s to return to the model's scale.
    The threshold is the one number whose space the file does not state; sae-lens (6.54,
    `get_llama_scope_config_from_hf`) reads it as given at the model's scale and multiplies it
    by the same s, and so do we. `sparsity_include_decoder_norm` is ignored, as in sae-lens.
    """
    missing = [k for k in LLAMA_SCOPE_KEYS if k not in state]
    if missing:
        raise ValueError(
            f"{name or 'Llama Scope checkpoint'} lacks tensors {missing}; found {sorted(state)}."
        )
    s = norm_scaling_factor(hyperparams)
    try:
        theta = float(hyperparams["jump_relu_threshold"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"{name or 'Llama Scope'} hyperparams lack a scalar jump_relu_threshold ({e!r})."
        ) from e
    act = hyperparams.get("act_fn", "jumprelu")
    if act != "jumprelu":
        raise ValueError(f"act_fn is {act!r}; only JumpReLU Llama Scope SAEs are supported.")
    d, F = int(hyperparams["d_model"]), int(hyperparams.get("d_sae", state["encoder.bias"].numel()))
    expected = {"encoder.weight": (F, d), "encoder.bias": (F,), "decoder.weight": (d, F)}
    expected["decoder.bias"] = (d,)
    for k, shape in expected.items():
        got = tuple(state[k].shape)
        if got != shape:
            raise ValueError(
                f"{name or 'Llama Scope'}: {k} has shape {got}, expected {shape} from "
                f"d_model={d}, d_sae={F} (Llama Scope stores encoder.weight as (d_sae, d_model) "
                "and decoder.weight as (d_model, d_sae))."
            )
    # Scale in float64 so the folded weights round once, to the requested dtype; a block of
    # rows at a time: a 32k x 4096 matrix is 1 GB in float64 (whole: 5 GB held per load).
    W_enc = _rescaled(state["encoder.weight"], s, divide=False, dtype=dtype).T  # (d, F)
    W_dec = _rescaled(state["decoder.weight"], s, divide=True, dtype=dtype).T  # (F, d)
    tensors = {
        "W_enc": W_enc,
        "b_enc": state["encoder.bias"].detach().to("cpu", torch.float64),  # (F,)
        "W_dec": W_dec,
        "b_dec": state["decoder.bias"].detach().to("cpu", torch.float64) / s,  # (d,)
        "threshold": torch.full((F,), theta * s, dtype=torch.float64),
    }
    tensors = {k: v.to(device=device, dtype=dtype).contiguous() for k, v in tensors.items()}
    info = {
        "norm_scaling_factor": s,
        "jump_relu_threshold": theta,
        "hook_point_in": hyperparams.get("hook_point_in"),
        "sparsity_include_decoder_norm": hyperparams.get("sparsity_include_decoder_norm"),
    }
    return JumpReLUSAE(**tensors, name=name, meta={**(meta or {}), **info})


def _rescaled(x: torch.Tensor, s: float, *, divide: bool, dtype: torch.dtype) -> torch.Tensor:
    """x / s (divide) or x · s, computed in float64 and rounded once to dtype, ROWS rows at a
    time, so the float64 copy is never held whole."""
    x = x.detach().to("cpu")
    out = torch.empty(x.shape, dtype=dtype)
    for i in range(0, x.shape[0], ROWS):
        block = x[i : i + ROWS].to(torch.float64)
        out[i : i + ROWS] = (block / s if divide else block * s).to(dtype)
    return out


def read_llama_scope_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The four Llama Scope tensors of a final.safetensors (other entries are not read)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in LLAMA_SCOPE_KEYS if k in f.keys()}  # noqa: SIM118
    except SafetensorError as e:
        raise ValueError(f"{path} is not a readable safetensors file ({e}); re-download it.") from e


def load_llama_scope(
    repo_id: str | os.PathLike,
    folder: str,
    *,
    revision: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> JumpReLUSAE:
    """Load `<repo_id>/<folder>` (e.g. `fnlp/Llama3_1-8B-Base-LXR-8x`, `Llama3_1-8B-Base-L20R-8x`).

    `repo_id` is a hub repo or a local directory with the same layout. Named
    `f"{repo_id}/{folder}"`; the conversion is `convert_llama_scope`.
    """
    folder = folder.strip("/")
    kw = {"revision": revision, "cache_dir": cache_dir, "local_files_only": local_files_only}
    hp_path = fetch_file(repo_id, f"{folder}/{HYPERPARAMS_FILE}", **kw)
    try:
        hyperparams = json.loads(Path(hp_path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{hp_path} is not valid JSON ({e}).") from e
    state = read_llama_scope_weights(fetch_file(repo_id, f"{folder}/{WEIGHTS_FILE}", **kw))
    meta = {"source": "llama_scope", "repo_id": str(repo_id), "sae_id": folder}
    if revision is not None:
        meta["revision"] = revision
    return convert_llama_scope(
        state, hyperparams, name=f"{repo_id}/{folder}", meta=meta, device=device, dtype=dtype
    )
