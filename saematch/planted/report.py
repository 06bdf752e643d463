"""Tables, figures and saved permutations of a ground-truth report (experiment ground_truth)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from saematch import plotting
from saematch.matchfile import load_matching, record_saes
from saematch.matching import Matching, match
from saematch.planted.evaluate import GroundTruthReport, Matcher
from saematch.sae import JumpReLUSAE

PERMS = "matchings.safetensors"


def perm_key(mode: str, fold: bool, layer_a: int, layer_b: int) -> str:
    """Name of one permutation in matchings.safetensors, e.g. "folded_both/2-3"."""
    return f"{'folded' if fold else 'unfolded'}_{mode}/{layer_a}-{layer_b}"


class RecordingMatcher:
    """A Matcher that solves eq. 3 (saematch.matching.match) and keeps every Matching, keyed
    "<fold>_<mode>/<a>-<b>" by the SAEs' layers, so a run's numbers can be recomputed from its
    saved matchings alone. bias_weight: the optional b_enc term of mode both (match())."""

    def __init__(self, layer_of: dict[int, int], bias_weight: float = 0.0) -> None:
        self.layer_of = layer_of  # id(sae) -> layer
        self.bias_weight = bias_weight
        self.matchings: dict[str, Matching] = {}

    def __call__(self, a: JumpReLUSAE, b: JumpReLUSAE, mode: str, fold: bool) -> np.ndarray:
        key = perm_key(mode, fold, self.layer_of[id(a)], self.layer_of[id(b)])
        if key not in self.matchings:
            m = match(a, b, mode=mode, fold=fold, bias_weight=self.bias_weight)
            self.matchings[key] = record_saes(m, a, b)
        return np.asarray(self.matchings[key].perm, dtype=np.int64)

    def match_files(self) -> dict[str, dict[tuple[int, int], Matching]]:
        """{name: {(t, u): Matching}} for match files: adjacent pairs under the variant's
        name (e.g. "folded_both"), direct t → t+k LAPs under "<variant>_exact_k<k>"."""
        out: dict[str, dict[tuple[int, int], Matching]] = {}
        for key, m in self.matchings.items():
            variant, pair = key.split("/")
            a, b = (int(x) for x in pair.split("-"))
            name = variant if b == a + 1 else f"{variant}_exact_k{b - a}"
            out.setdefault(name, {})[(a, b)] = m
        return out

    @property
    def perms(self) -> dict[str, np.ndarray]:
        """key -> perm (F,) int64 of every matching solved so far."""
        return {k: np.asarray(m.perm, dtype=np.int64) for k, m in self.matchings.items()}

    def save(self, path: str | os.PathLike) -> Path:
        """All permutations as int64 tensors in one safetensors file."""
        save_file({k: torch.from_numpy(v) for k, v in self.perms.items()}, str(path))
        return Path(path)


def saved_matcher(path: str | os.PathLike, layer_of: dict[int, int]) -> Matcher:
    """A Matcher that answers from saved permutations (no LAP is solved): a file written by
    RecordingMatcher.save, or a run's matchings/ folder (its match-file indexes, match_files
    names)."""
    path = Path(path)
    if path.is_dir():
        perms = {}
        for index in path.glob("*.json"):
            meta = json.loads(index.read_text())
            if not isinstance(meta, dict) or meta.get("format") != "saematch.match-index":
                continue  # a match file's sidecar, not an index
            variant = index.stem.partition("_exact_k")[0]
            for p in meta["pairs"]:
                m = load_matching(path / p["file"])
                perms[f"{variant}/{p['from']}-{p['to']}"] = torch.from_numpy(m.perm)
    else:
        perms = load_file(str(path))

    def matcher(a: JumpReLUSAE, b: JumpReLUSAE, mode: str, fold: bool) -> np.ndarray:
        key = perm_key(mode, fold, layer_of[id(a)], layer_of[id(b)])
        if key not in perms:
            raise KeyError(f"{path} holds no matching {key!r}; it has {sorted(perms)[:6]}…")
        return perms[key].numpy()

    return matcher


def _fmt(x: float) -> str:
    return "  n/a" if math.isnan(x) else f"{x:5.2f}"


def summary_table(report: GroundTruthReport) -> str:
    """The console table: recovery per layer, accuracy per variant and pair, composition."""
    pairs = list(next(iter(report.accuracy.values())))
    lines = ["SAE recovery (share of true features with a decoder row at cos ≥ 0.9):"]
    lines.append("  " + "  ".join(f"L{t} {_fmt(r)}" for t, r in report.recovery.items()))
    lines.append("Matching accuracy per layer pair (support = features with a knowable answer):")
    lines.append(f"  {'variant':<18}" + "".join(f"{p:>8}" for p in pairs) + "    mean")
    for v, per in report.accuracy.items():
        vals = [a.accuracy for a in per.values()]
        mean = float(np.nanmean(vals)) if not all(map(math.isnan, vals)) else float("nan")
        lines.append(f"  {v:<18}" + "".join(f"{_fmt(x):>8}" for x in vals) + f"   {_fmt(mean)}")
    sup = next(iter(report.accuracy.values()))
    lines.append(f"  {'support':<18}" + "".join(f"{a.support:>8}" for a in sup.values()))
    lines.append(
        f"  {'best bijection':<18}" + "".join(f"{_fmt(a.ceiling):>8}" for a in sup.values())
    )
    if report.composition:
        lines.append(f"Composition ({report.composition_variant}), pooled over start layers:")
        lines.append("  distance  composed  exact LAP  support")
        for k, d in report.composition.items():
            lines.append(
                f"  {k:>8}  {_fmt(d['composed'].accuracy):>8}  {_fmt(d['exact'].accuracy):>9}"
                f"  {d['composed'].support:>7}"
            )
    return "\n".join(lines)


def plot_report(report: GroundTruthReport):
    """Three panels: recovery per layer; accuracy per variant and pair; composition vs distance."""
    fig, axes = plotting.new_figure(1, 3, panel_size=(4.4, 3.4))
    t = list(report.recovery)
    plotting.line_per_layer(axes[0], t, list(report.recovery.values()), "recovery")
    axes[0].set_ylim(0, 1.05)
    plotting.label_axes(axes[0], y="SAE recovery", title="True features recovered", legend=False)
    ax = axes[1]
    for v, per in report.accuracy.items():
        xs = [int(p.split("-")[0]) for p in per]
        ys = [a.accuracy for a in per.values()]
        plotting.line_per_layer(ax, xs, ys, v, **plotting.variant_style(v))
    ax.set_ylim(0, 1.05)
    plotting.label_axes(ax, x="layer", y="matching accuracy", title="Matching t → t+1")
    ax.legend(fontsize=7)
    ax = axes[2]
    ks = list(report.composition)
    for kind, method, style in (("composed", "composition", "-"), ("exact", "exact", "--")):
        vals = [report.composition[k][kind].accuracy for k in ks]
        label = f"{kind} ({report.composition_variant})"
        plotting.line_per_layer(ax, ks, vals, label, method=method, linestyle=style)
    ax.set_ylim(0, 1.05)
    plotting.label_axes(ax, x="distance k", y="matching accuracy", title="Composition t → t+k")
    return fig
