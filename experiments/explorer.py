"""The feature-path explorer: one self-contained `explorer.html` per run (Sec. 3.2, Fig. 18-19).

Writes the page and its per-layer data files (`explorer_data/`) into the run dir. The page
follows any feature forward and backward through the composed adjacent matchings
(perm_AC = perm_BC[perm_AB]) and, from the `exact_starts` layers, through exact LAPs between
non-adjacent layers; each step shows its pair cost (cfg.matching's mode, on folded weights when
fold=true), its description, and the judge's label when `judge_run` names a judge_by_layer run.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from saematch.explorer import DATA_DIR, ExplorerData, Link, link_from_matching, write_explorer
from saematch.explorer.data import (
    cheapest_paths,
    cost_bins,
    link_summary,
    predecessors_from_graph,
)
from saematch.lazy_saes import mapped
from saematch.metrics import MatchingScoreAccumulator
from saematch.zoo.describe import NEVER_ACTIVE
from saematch_experiments.harness.config_values import plain
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.registry import default_options
from saematch_experiments.harness.results import Results
from saematch_experiments.harness.sae_sets import descriptions_mismatch

log = logging.getLogger(__name__)


@dataclass
class Options:
    # Start layers s of exact LAPs s -> L for every later L; null = every layer of the set, [] =
    # none. n layers cost n(n-1)/2 LAPs: 15 on the zoo, 325 on Gemma Scope (use e.g. [10,12,20]).
    exact_starts: list[int] | None
    exact_max_distance: int | None  # only L - s <= this; null = up to the last layer
    matching_score: bool  # one pass of the model over cfg.data
    descriptions: bool  # false: no description files (e.g. with a slow API source)
    judge_run: str | None  # a judge_by_layer run dir (or its judge_pairs.csv)
    flow_graph: str | None  # a flow graph file (experiment=flow's matchings/flow_graph.*)
    title: str | None  # page title; null = SAE set, matching settings


@dataclass
class PairRow:
    """One adjacent layer pair as the page summarises it."""

    layer: int
    next_layer: int
    median_cost: float | None
    unmatched_share: float
    matching_score: float | None


def exact_links(ctx: Context, adjacent: list[Link], starts: list[int], max_dist: int | None):
    """Exact LAPs s -> L (cached on disk via ctx.matchings); L = s + 1 is the adjacent link."""
    layers, by = ctx.layers, ctx.saes
    out = []
    for s in starts:
        for k in range(layers.index(s) + 1, len(layers)):
            L = layers[k]
            if max_dist is not None and L - s > max_dist:
                break
            if k == layers.index(s) + 1:
                out.append(adjacent[k - 1])
            else:
                out.append(link_from_matching(s, L, ctx.matchings(saes={s: by[s], L: by[L]})[s]))
    return out


def judge_labels(run: str, adjacent: list[Link], variant: str) -> tuple[dict, str]:
    """{layer t: {feature i: label}} from a judge_by_layer run, for the steps this run also has.

    Rows of another variant, or whose pair (i, j) is not this run's adjacent match, are dropped
    and counted (a judge run over other SAEs or settings then shows no labels, not wrong ones).
    """
    path = Path(run).expanduser()
    csv_path = path / "judge_pairs.csv" if path.is_dir() else path
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"experiment.judge_run={run}: no judge_pairs.csv there; pass the run dir of "
            "`saematch experiment=judge_by_layer` (outputs/judge_by_layer/<time>/)"
        )
    links = {lk.src: lk for lk in adjacent}
    labels: dict[int, dict[int, int]] = {}
    kept = other = 0
    with open(csv_path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["variant"] != variant or not r.get("label", "").strip().isdigit():
                continue
            t, i, j = int(r["layer"]), int(r["feature"]), int(r["next_feature"])
            if t in links and 0 <= i < links[t].width and links[t].target[i] == j:
                labels.setdefault(t, {})[i] = int(r["label"])
                kept += 1
            else:
                other += 1
    note = (
        json.loads((csv_path.parent / "results.json").read_text())
        if (csv_path.parent / "results.json").is_file()
        else {}
    )
    judge = (note.get("results") or {}).get("judge") or {}
    text = f"{judge.get('kind', 'judge')} ({judge.get('note', 'labels from ' + str(csv_path))})"
    if not kept:
        raise ValueError(
            f"{csv_path}: none of its {other} labelled '{variant}' steps is a pair of this run's "
            "matchings; was it run on the same SAEs and matching settings?"
        )
    return labels, f"{text}; {kept} steps labelled" + (
        f", {other} of other matchings dropped" if other else ""
    )


def matching_scores(ctx: Context, adjacent: list[Link]) -> dict[int, float]:
    """Matching score of each adjacent pair (docs/method.md §5) on ctx's activations, in one pass:
    the model's on ctx.batch, or the planted world's generator (no LM there)."""
    from saematch.metrics import active

    by = mapped(ctx.saes, lambda s: s.to(ctx.act_device))  # a pair at a time (lazy_saes)
    acc = {lk.src: MatchingScoreAccumulator(lk.target) for lk in adjacent}
    for rows in ctx.activation_rows(ctx.layers):  # (L, n, d)
        prev = None  # layer k−1's active features, so only one pair's SAEs is ever needed
        for k, L in enumerate(ctx.layers):
            act = active(by[L], rows[k])
            if prev is not None:
                acc[adjacent[k - 1].src].update(prev, act)
            prev = act
    return {t: float(a.result()[0]) for t, a in acc.items()}


def explorer_data(ctx: Context, o: Options) -> tuple[ExplorerData, dict]:
    """Everything the page shows for ctx's SAE set and matchings; plus timing/bookkeeping."""
    m = plain(ctx.cfg.matching)
    t0 = time.perf_counter()
    layers = list(ctx.layers)
    starts = layers[:-1] if o.exact_starts is None else [int(s) for s in o.exact_starts]
    bad = [s for s in starts if s not in layers[:-1]]
    if bad:
        raise ValueError(
            f"experiment.exact_starts={starts}: {bad} not among this set's layers "
            f"{layers[:-1]} (the last layer has nothing after it)"
        )
    ms = ctx.matchings()
    adjacent = [link_from_matching(t, u, ms[t]) for t, u in ctx.next_layer.items()]
    exact = exact_links(ctx, adjacent, starts, o.exact_max_distance)
    t_match = time.perf_counter() - t0
    width = adjacent[0].width
    descs, no_descs = {}, descriptions_mismatch(ctx.cfg) if o.descriptions else None
    if no_descs:  # e.g. the planted world: it has no descriptions; never build the zoo for them
        log.warning("explorer: no descriptions (%s)", no_descs)
    elif o.descriptions:
        descs = {L: [ctx.descriptions(L).get(i) for i in range(width)] for L in layers}
    judge, note = {}, None
    if o.judge_run:
        judge, note = judge_labels(o.judge_run, adjacent, "folded" if m["fold"] else "unfolded")
    scores = matching_scores(ctx, adjacent) if o.matching_score else {}
    preds = {}
    if o.flow_graph:
        from saematch.flow import load_flow_graph

        preds = predecessors_from_graph(load_flow_graph(Path(o.flow_graph).expanduser()))
    settings = {"saes": ctx.sae_set.name, "mode": m["mode"], "fold": m["fold"]}
    settings["solver"] = m["solver"]
    fold = str(m["fold"]).lower()
    data = ExplorerData(
        layers,
        adjacent,
        descs,
        exact=exact,
        judge=judge,
        judge_note=note,
        matching_score=scores,
        predecessors=preds,
        settings=settings,
        title=o.title or f"{ctx.sae_set.name} · mode {m['mode']}, fold={fold}",
    )
    data.examples = cheapest_paths(data, 8, usable=lambda t: t is not None and t != NEVER_ACTIVE)
    info = {"exact_starts": starts, "n_exact_links": len(exact), "judge": note}
    info["descriptions_skipped"] = no_descs
    info["flow_graph"] = o.flow_graph
    info["matching_score"] = {str(t): v for t, v in scores.items()}
    info["seconds_matchings"] = t_match
    return data, info


def write_for_run(ctx: Context) -> Path:
    """The page for another experiment's run (top-level `explorer=true`): its SAEs and
    matchings (ctx's, so no new LAP), no exact LAPs beyond them, no model pass."""
    opts = default_options("explorer", exact_starts=[], matching_score=False)
    data, _ = explorer_data(ctx, opts)
    return write_explorer(data, ctx.run_dir)


def run(opts: Options, ctx: Context) -> Results:
    """Write explorer.html and explorer_data/ into the run dir; the summary lists sizes, times."""
    data, info = explorer_data(ctx, opts)
    t1 = time.perf_counter()
    html = write_explorer(data, ctx.run_dir)
    files = sorted((ctx.run_dir / DATA_DIR).glob("*.js"))
    summary = {
        "explorer": html.name,
        "html_bytes": html.stat().st_size,
        "data_files": len(files),
        "data_bytes": sum(f.stat().st_size for f in files),
        **info,
        "seconds_write": time.perf_counter() - t1,
    }
    rows = [
        PairRow(
            lk.src,
            lk.dst,
            link_summary(lk, cost_bins([lk]))["quantiles"]["p50"],
            lk.unmatched_share,
            data.matching_score.get(lk.src),
        )
        for lk in data.adjacent
    ]
    res = Results(summary=summary, headline=rows)
    res.table("explorer_pairs", rows)
    return res
