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


def as_matched(saes: list, fold: bool) -> list:
    """The SAEs in the form a matching saw them: folded when fold=True (SPEC §5, pruning).

    SAE Match transfers feature values between layers in the matched weights' units: with
    folding, E_t gives f/θ_t and D_{t+1} multiplies by θ_{t+1}, so a feature at its threshold
    in layer t lands at its partner's threshold in layer t+1.
    """
    return [s.fold() for s in saes] if fold else list(saes)


def by_layer(layers: list[int], items: list) -> dict[int, object]:
    """Pair each layer with its item (SAE, matching) for indexing by block number."""
    return dict(zip(layers, items, strict=True))
