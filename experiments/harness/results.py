"""What an experiment returns (Results), and the one place match files are written."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saematch.lazy_saes import mapped


def as_row(row: Any) -> dict:
    """A table row as a dict: dataclass rows (the typed way) or mappings. A field holding a
    dataclass contributes its fields as columns (e.g. a row's `labels: Labels` counts)."""
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        out = {}
        for f in dataclasses.fields(row):
            v = getattr(row, f.name)
            is_row = dataclasses.is_dataclass(v) and not isinstance(v, type)
            out.update(as_row(v) if is_row else {f.name: v})
        return out
    if isinstance(row, Mapping):
        return dict(row)
    raise TypeError(f"a table row must be a dataclass or a mapping, got {type(row).__name__}")


@dataclass
class Results:
    """Everything one run produced; the CLI skeleton writes it (experiments/harness/cli.py).

    summary   -> results.json["results"] (the skeleton adds "sae_set")
    tables    -> <name>.csv (rows: dataclasses or dicts); history=False keeps long tables
                 out of the W&B history
    figures   -> <name>.png + <name>.pdf
    matchings -> match files matchings/<name>_L<t>-L<next>.safetensors + .json (and an index
                 <name>.json): {name: {first layer t: Matching}}
    texts     -> <file name> with this text (e.g. a Markdown report)
    metrics   -> metrics.jsonl, one row each (and W&B history)
    headline  -> the console summary: one row per layer of the main metric
    console   -> printed instead of the headline table when set (a summary of its own)
    error     -> recorded as status "partial", then re-raised (e.g. a judge that gave up)
    """

    summary: dict = field(default_factory=dict)
    tables: dict[str, tuple[list, bool | None]] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    matchings: dict[str, dict] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    metrics: list = field(default_factory=list)
    headline: list = field(default_factory=list)
    console: str | None = None
    error: BaseException | None = None

    def table(self, name: str, rows: list, history: bool | None = None) -> list:
        """Add a table; returns its rows."""
        self.tables[name] = (rows, history)
        return rows


def save_matchings(run_dir: Path, name: str, layers: list[int], matchings: dict) -> Path:
    """Write adjacent-layer matchings as match files (saematch.matchfile) in run_dir/matchings/.

    matchings: {first layer t: Matching of t -> the next layer of `layers`}, or {(t, u): Matching
    of t -> u} for non-adjacent pairs (e.g. exact LAPs t -> t+k). One match file per
    pair, `<name>_L<t>-L<next>.safetensors` + `.json` (perm with −1 for unmatched, pair cost,
    confidence, predecessors, splits, duals; both SAEs' ids and fingerprints, the settings),
    readable with `saematch.load_matching` or safetensors + json alone; and `<name>.json`, an
    index of the pairs and their files. The only writer of match files: the CLI skeleton calls
    it for every entry of Results.matchings.
    """
    from saematch.matchfile import save_match_file

    out = Path(run_dir) / "matchings"
    out.mkdir(parents=True, exist_ok=True)
    nxt = dict(zip(layers[:-1], layers[1:], strict=True))
    index = {"format": "saematch.match-index", "layers": list(layers), "pairs": []}
    for key, m in sorted(matchings.items()):
        t, u = key if isinstance(key, tuple) else (key, nxt.get(key))
        stem = f"{name}_L{t}-L{u}"
        save_match_file(m, out / stem)
        index["pairs"].append(
            {"from": t, "to": u, "file": f"{stem}.json", "settings": m.settings()}
        )
    (out / f"{name}.json").write_text(json.dumps(index, indent=2, default=str))
    return out


def as_matched(saes: Mapping, fold: bool) -> Mapping:
    """The SAEs ({layer: SAE}) in the form a matching saw them: folded when fold=True
    (docs/method.md §5); of a lazily loaded set (saematch.lazy_saes), folded on access.

    SAE Match transfers feature values between layers in the matched weights' units: with
    folding, E_t gives f/θ_t and D_{t+1} multiplies by θ_{t+1}, so a feature at its threshold
    in layer t lands at its partner's threshold in layer t+1.
    """
    return mapped(saes, lambda s: s.fold()) if fold else saes  # lazy for a LazySAEs set
