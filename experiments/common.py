"""Small pieces shared by the experiment scripts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def save_matchings(run_dir: Path, name: str, layers: list[int], matchings: list) -> Path:
    """Write the permutations and per-pair MSE of adjacent-layer matchings to run_dir/matchings/.

    One `<name>.npz` (arrays perm_<t>, pair_mse_<t>; no pickle) plus a JSON of the settings.
    """
    out = Path(run_dir) / "matchings"
    out.mkdir(parents=True, exist_ok=True)
    arrays = {}
    meta = {"layers": layers, "pairs": []}
    for t, m in zip(layers[:-1], matchings, strict=True):
        arrays[f"perm_{t}"] = np.asarray(m.perm, dtype=np.int64)
        arrays[f"pair_mse_{t}"] = np.asarray(m.pair_mse, dtype=np.float32)
        meta["pairs"].append(
            {"from": t, "total_cost": float(m.total_cost), "settings": getattr(m, "settings", {})}
        )
    np.savez(out / f"{name}.npz", **arrays)
    (out / f"{name}.json").write_text(json.dumps(meta, indent=2, default=str))
    return out


def by_layer(layers: list[int], items: list) -> dict[int, object]:
    """Pair each layer with its item (SAE, matching) for indexing by block number."""
    return dict(zip(layers, items, strict=True))
