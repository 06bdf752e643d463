"""truth.safetensors: the planted world's truth, saved beside its SAEs (docs/method.md §9).

Keys per layer t: directions_<t> [N_t, d] float32 (unit rows), scales_<t> [N_t] float32,
successor_<t> [N_t, 2] int64 (children at t+1, −1 = none; t < L − 1), and, so the sampler can be
rebuilt from the file alone, rates_<t> [N_t], parent_<t> [N_t] int64, split_<t> [N_t] uint8.
The metadata holds the WorldConfig as JSON under "config".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from saematch.atomic import atomic_write_bytes
from saematch.planted.world import World, WorldConfig

TRUTH = "truth.safetensors"


def save_truth(world: World, path: str | os.PathLike) -> Path:
    """Write the world's truth to `path` (a .safetensors file), atomically."""
    tensors = {}
    for t in range(world.n_layers):
        tensors[f"directions_{t}"] = world.directions[t].float().contiguous()
        tensors[f"scales_{t}"] = world.scales[t].float().contiguous()
        tensors[f"rates_{t}"] = world.rates[t].float().contiguous()
        tensors[f"parent_{t}"] = world.parent[t].long().contiguous()
        tensors[f"split_{t}"] = world.split[t].to(torch.uint8).contiguous()
        if t < world.n_layers - 1:
            tensors[f"successor_{t}"] = world.successor[t].long().contiguous()
    meta = {"format": "saematch-truth/1", "config": json.dumps(world.config.to_dict())}
    return atomic_write_bytes(Path(path), save(tensors, metadata=meta))


def load_truth(path: str | os.PathLike) -> World:
    """Read a truth file written by `save_truth` back into a World."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no truth file at {path}; build the planted set first")
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
        if meta.get("format") != "saematch-truth/1":
            raise ValueError(f"{path} is not a saematch truth file (metadata {meta})")
        cfg = WorldConfig(**json.loads(meta["config"]))
        get = fh.get_tensor
        L = cfg.n_layers
        return World(
            cfg,
            directions=[get(f"directions_{t}") for t in range(L)],
            scales=[get(f"scales_{t}") for t in range(L)],
            rates=[get(f"rates_{t}") for t in range(L)],
            parent=[get(f"parent_{t}") for t in range(L)],
            split=[get(f"split_{t}").bool() for t in range(L)],
            successor=[get(f"successor_{t}") for t in range(L - 1)],
        )
