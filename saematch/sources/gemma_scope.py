"""Gemma Scope SAEs: `<sae_id>/params.npz` from the Hugging Face hub, its cache, or a local mirror.

`fetch_file` is the one place this package touches the hub; it is shared by the Llama Scope
loader. Files come through `huggingface_hub.hf_hub_download`, so the HF cache, HF_HUB_OFFLINE=1,
HF_ENDPOINT mirrors and gated-repo tokens (from the environment) all behave as usual.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from huggingface_hub import constants as hf_constants
from huggingface_hub import hf_hub_download
from huggingface_hub.utils import (
    EntryNotFoundError,
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from saematch.sae import JumpReLUSAE

GEMMA_SCOPE_2B_RES = "google/gemma-scope-2b-pt-res"
GEMMA_SCOPE_2B_RES_CANONICAL = "google/gemma-scope-2b-pt-res-canonical"
# Module SAEs, same layout (`layer_{L}/width_{W}/average_l0_{K}/params.npz`). `att` reads the
# concatenated head outputs before o_proj (attn_z, width n_heads·head_dim = 2048 in Gemma-2-2B);
# `mlp` reads the MLP output after the post-MLP RMSNorm (mlp_out, d_model 2304).
GEMMA_SCOPE_2B_ATT = "google/gemma-scope-2b-pt-att"
GEMMA_SCOPE_2B_MLP = "google/gemma-scope-2b-pt-mlp"
GEMMA_SCOPE_2B_ATT_CANONICAL = "google/gemma-scope-2b-pt-att-canonical"
GEMMA_SCOPE_2B_MLP_CANONICAL = "google/gemma-scope-2b-pt-mlp-canonical"
PARAMS_FILE = "params.npz"
GEMMA_SCOPE_KEYS = ("W_enc", "W_dec", "b_enc", "b_dec", "threshold")

_HUB_ERRORS = (
    EntryNotFoundError,  # includes LocalEntryNotFoundError (offline, not cached)
    RepositoryNotFoundError,  # includes GatedRepoError
    RevisionNotFoundError,
    OfflineModeIsEnabled,
    HfHubHTTPError,
)


def fetch_file(
    repo_id: str | os.PathLike,
    filename: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> Path:
    """Local path of `filename` in `repo_id`: a local directory, or a hub repo via the HF cache.

    A `repo_id` that names an existing directory is read as `<repo_id>/<filename>` and never
    touches the hub. Otherwise `hf_hub_download` resolves it (cache first when offline).
    `cache_dir` overrides HF_HUB_CACHE (huggingface_hub reads that variable at import time).
    """
    local = Path(repo_id).expanduser()
    if local.is_dir():
        path = local / filename
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist. {str(repo_id)!r} is a local directory, so the file must "
                f"be at <dir>/{filename} (the hub repo's layout)."
            )
        return path
    try:
        got = hf_hub_download(
            str(repo_id),
            filename,
            revision=revision,
            cache_dir=None if cache_dir is None else str(cache_dir),
            local_files_only=local_files_only,
        )
    except HFValidationError as e:
        raise FileNotFoundError(
            f"{str(repo_id)!r} is neither an existing local directory nor a valid Hugging Face "
            f"repo id ({e}); check the path."
        ) from e
    except _HUB_ERRORS as e:
        cache = cache_dir or hf_constants.HF_HUB_CACHE
        offline = hf_constants.HF_HUB_OFFLINE or local_files_only
        raise FileNotFoundError(
            f"could not get {filename!r} from Hugging Face repo {str(repo_id)!r} "
            f"(revision {revision or 'main'}): {type(e).__name__}: {e}\n"
            f"Offline mode is {'on' if offline else 'off'}; offline, the file must already be in "
            f"the HF cache at {cache} (fetch it once online with `huggingface-cli download "
            f"{repo_id} {filename}`). Or set HF_ENDPOINT to a mirror, or pass a local directory "
            f"with the same layout as repo_id."
        ) from e
    return Path(got)


def read_params_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The five Gemma Scope arrays of a `params.npz` (no pickle: object arrays are refused)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            found = sorted(npz.files)
            missing = [k for k in GEMMA_SCOPE_KEYS if k not in found]
            if missing:
                raise ValueError(
                    f"{path} lacks arrays {missing}; found {found}. A Gemma Scope params.npz holds "
                    f"{list(GEMMA_SCOPE_KEYS)}."
                )
            return {k: npz[k] for k in GEMMA_SCOPE_KEYS}
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path} is not a readable .npz archive ({e}); re-download it.") from e
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise ValueError(
                f"{path} is not a plain numeric .npz (numpy: {e}); refusing to unpickle. Gemma "
                "Scope stores plain float32 arrays; re-download the file."
            ) from e
        raise


def sae_from_arrays(
    arrays: dict[str, np.ndarray],
    *,
    name: str = "",
    meta: dict | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> JumpReLUSAE:
    """A JumpReLUSAE from Gemma-Scope-layout arrays (W_enc (d, F), W_dec (F, d), ...)."""
    tensors = {}
    for k in GEMMA_SCOPE_KEYS:
        a = np.asarray(arrays[k])
        if not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"{name or 'SAE'}: {k} has dtype {a.dtype}; expected float32.")
        tensors[k] = torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=dtype)
    return JumpReLUSAE(**tensors, name=name, meta=dict(meta or {}))  # validates shapes, NaN, θ


def load_gemma_scope(
    repo_id: str | os.PathLike,
    sae_id: str,
    *,
    revision: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> JumpReLUSAE:
    """Load the Gemma Scope SAE `<repo_id>/<sae_id>/params.npz` (e.g. `layer_20/width_16k/...`).

    `repo_id` is a hub repo (`google/gemma-scope-2b-pt-res`) or a local directory with the same
    layout. The SAE is named `f"{repo_id}/{sae_id}"`; repo, sae_id and revision go into `meta`.
    """
    sae_id = sae_id.strip("/")
    if sae_id.endswith(PARAMS_FILE):
        sae_id = sae_id[: -len(PARAMS_FILE)].rstrip("/")
    path = fetch_file(
        repo_id,
        f"{sae_id}/{PARAMS_FILE}",
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
    )
    meta = {"source": "gemma_scope", "repo_id": str(repo_id), "sae_id": sae_id}
    if revision is not None:
        meta["revision"] = revision
    return sae_from_arrays(
        read_params_npz(path),
        name=f"{repo_id}/{sae_id}",
        meta=meta,
        device=device,
        dtype=dtype,
    )
