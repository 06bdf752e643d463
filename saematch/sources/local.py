"""This project's own SAE file format: a folder with safetensors weights and JSON metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save

from saematch.atomic import atomic_write_bytes, atomic_write_text
from saematch.sae import TENSOR_NAMES, JumpReLUSAE

WEIGHTS = "sae.safetensors"
METADATA = "sae.json"
FORMAT = "saematch-sae/1"


def save_sae(sae: JumpReLUSAE, path: str | os.PathLike) -> Path:
    """Write `sae` to folder `path` (sae.safetensors + sae.json), atomically; returns the folder."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in sae.state_dict().items()}
    meta = {
        "format": FORMAT,
        "name": sae.name,
        "d_model": sae.d_model,
        "width": sae.width,
        "meta": sae.meta,
    }
    if sae.k is not None:  # TopK only: every other sae.json keeps its bytes (cache keys)
        meta["k"] = sae.k
    atomic_write_bytes(path / WEIGHTS, save(tensors))
    atomic_write_text(path / METADATA, json.dumps(meta, indent=2))
    return path


def load_sae(path: str | os.PathLike, device: str = "cpu") -> JumpReLUSAE:
    """Read an SAE written by `save_sae` (a folder, or its sae.safetensors file)."""
    path = Path(path)
    folder = path.parent if path.suffix == ".safetensors" else path
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(
            f"no SAE at {folder}: expected {WEIGHTS} (+ {METADATA}) written by saematch.save_sae"
        )
    try:
        tensors = load_file(str(weights), device=device)
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(
            f"{weights} is not a readable safetensors file ({e}); it is truncated or corrupt: "
            "write it again with saematch.save_sae (a zoo file: delete it and the zoo rebuilds)"
        ) from e
    missing = [k for k in TENSOR_NAMES if k not in tensors]
    if missing:
        raise ValueError(f"{weights} lacks tensors {missing}; found {sorted(tensors)}")
    meta = {}
    if (folder / METADATA).is_file():
        try:
            meta = json.loads((folder / METADATA).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(
                f"{folder / METADATA} is not valid JSON ({e}); write the SAE again with "
                "saematch.save_sae"
            ) from e
    return JumpReLUSAE(
        **{k: tensors[k] for k in TENSOR_NAMES},
        name=meta.get("name", str(folder)),
        meta=meta.get("meta", {}),
        k=meta.get("k"),
    )
