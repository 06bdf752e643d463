"""What the explorer page shows, as plain arrays: links between layers and per-pair summaries.

A `Link` is one matching of layer `src` to layer `dst`: `target[i] = j` pairs feature i of
`src` with feature j of `dst` (docs/method.md §3), −1 where i is left unmatched. Adjacent links
compose into paths (Sec. 3.2): `perm_AC = perm_BC[perm_AB]`; exact links (one LAP between
non-adjacent layers) are shown beside them. Nothing here knows Hydra or the browser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

N_BINS = 40  # cost histogram bins (log10-spaced, shared by every layer pair)
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass
class Link:
    """A matching src -> dst: target (F,) int64 with −1 = unmatched, cost (F,), confidence (F,)."""

    src: int
    dst: int
    target: np.ndarray  # (F,) int64, partner at dst or −1
    cost: np.ndarray  # (F,) float32, pair cost (NaN where unmatched)
    confidence: np.ndarray | None = None  # (F,) float32, per-pair confidence when known
    predecessors: np.ndarray | None = None  # (F, k) int64: dst j's k cheapest src features
    predecessor_cost: np.ndarray | None = None  # (F, k) float32
    split_children: np.ndarray | None = None  # (F, 2) int64: src i's two children, −1 = none

    def __post_init__(self) -> None:
        self.target = np.asarray(self.target, dtype=np.int64).reshape(-1)
        self.cost = np.asarray(self.cost, dtype=np.float32).reshape(-1)
        n = self.target.size
        where = f"link {self.src} -> {self.dst}"
        if self.cost.size != n:
            raise ValueError(f"{where}: cost has {self.cost.size} entries, target {n}")
        if n and (self.target.min() < -1 or self.target.max() >= n):
            raise ValueError(
                f"{where}: targets must be feature indices in [0, {n}) or −1 (unmatched), "
                f"got [{self.target.min()}, {self.target.max()}]"
            )
        hit = self.target[self.target >= 0]
        if hit.size != np.unique(hit).size:
            raise ValueError(f"{where}: two features share a partner (not one-to-one)")
        if self.confidence is not None:
            self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
            if self.confidence.size != n:
                raise ValueError(f"{where}: confidence has {self.confidence.size} entries, not {n}")
        for name in ("predecessors", "predecessor_cost", "split_children"):
            a = getattr(self, name)
            if a is not None:
                a = np.asarray(a, dtype=np.float32 if name == "predecessor_cost" else np.int64)
                if a.ndim != 2 or a.shape[0] != n:
                    raise ValueError(f"{where}: {name} must be ({n}, k), got {a.shape}")
                setattr(self, name, a)

    @property
    def width(self) -> int:
        return int(self.target.size)

    @property
    def unmatched_share(self) -> float:
        """Fraction of src features with no partner (0 for a bijection)."""
        return float(np.mean(self.target < 0)) if self.width else 0.0


def link_from_matching(src: int, dst: int, matching) -> Link:
    """A Link from a matching object: `perm` (or `target`), `pair_mse` (or `cost`), and the
    optional `confidence`, `predecessors` (top-k), `predecessor_cost`, `split_children` of a
    match file (`saematch.load_matching`); −1 in perm marks an unmatched feature."""
    target = getattr(matching, "target", None)
    target = getattr(matching, "perm", None) if target is None else target
    cost = getattr(matching, "cost", None)
    cost = getattr(matching, "pair_mse", None) if cost is None else cost
    if target is None or cost is None:
        raise TypeError(
            f"layer {src} -> {dst}: a matching needs .perm and .pair_mse (or .target and .cost), "
            f"got {type(matching).__name__}"
        )
    extra = ("confidence", "predecessors", "predecessor_cost", "split_children")
    kw = {k: getattr(matching, k, None) for k in extra}
    return Link(src, dst, np.asarray(target), np.asarray(cost), **kw)


@dataclass
class Predecessor:
    """One flow-graph edge into a feature: from `feature` of `module` at `layer`, with a weight."""

    module: str  # e.g. "res", "mlp", "att"
    layer: int
    feature: int
    weight: float


@dataclass
class ExplorerData:
    """Everything one explorer page shows.

    layers: the SAE set's layers in order; adjacent[k] links layers[k] -> layers[k + 1];
    exact: extra links (any src < dst, e.g. one LAP from each chosen start layer);
    descriptions: {layer: (F,) texts or None}; judge: {layer t: {feature i: label 1/2/3}}
    for the step i -> adjacent target at t + 1; matching_score: {layer t: score of t -> t+1};
    predecessors: {layer: {feature: [Predecessor, ...]}} from a flow graph.
    """

    layers: list[int]
    adjacent: list[Link]
    descriptions: Mapping[int, Sequence[str | None]] = field(default_factory=dict)
    exact: list[Link] = field(default_factory=list)
    judge: Mapping[int, Mapping[int, int]] = field(default_factory=dict)
    judge_note: str | None = None
    matching_score: Mapping[int, float] = field(default_factory=dict)
    predecessors: Mapping[int, Mapping[int, list[Predecessor]]] = field(default_factory=dict)
    title: str = "feature paths"
    settings: dict = field(default_factory=dict)
    examples: list[tuple[int, int]] = field(default_factory=list)  # (layer, feature) to start

    def __post_init__(self) -> None:
        self.layers = [int(L) for L in self.layers]
        if len(self.layers) < 2 or sorted(set(self.layers)) != self.layers:
            raise ValueError(f"layers must be ≥ 2 distinct increasing ints, got {self.layers}")
        pairs = list(zip(self.layers[:-1], self.layers[1:], strict=True))
        got = [(lk.src, lk.dst) for lk in self.adjacent]
        if got != pairs:
            raise ValueError(f"adjacent links must cover {pairs} in order, got {got}")
        widths = {lk.width for lk in [*self.adjacent, *self.exact]}
        if len(widths) != 1:
            raise ValueError(f"every link must have the same width, got {sorted(widths)}")
        for lk in self.exact:
            if lk.src not in self.layers or lk.dst not in self.layers or lk.dst <= lk.src:
                raise ValueError(
                    f"exact link {lk.src} -> {lk.dst}: need src < dst in {self.layers}"
                )
        for L, texts in self.descriptions.items():
            if L not in self.layers or len(texts) != self.width:
                raise ValueError(
                    f"descriptions of layer {L}: need a layer of {self.layers} and "
                    f"{self.width} entries, got {len(texts)}"
                )

    @property
    def width(self) -> int:
        return self.adjacent[0].width


def cost_bins(links: Sequence[Link], n_bins: int = N_BINS) -> np.ndarray:
    """log10-spaced bin edges (n_bins + 1,) spanning every link's positive finite costs."""
    costs = np.concatenate([lk.cost[np.isfinite(lk.cost) & (lk.cost > 0)] for lk in links])
    if costs.size == 0:
        return np.logspace(-6, 0, n_bins + 1)
    lo, hi = np.log10(costs.min()), np.log10(costs.max())
    if hi - lo < 1e-6:
        lo, hi = lo - 0.5, hi + 0.5
    return np.logspace(lo, hi, n_bins + 1)


def link_summary(lk: Link, edges: np.ndarray) -> dict:
    """Cost histogram (over `edges`; zero costs in the first bin), quantiles, unmatched share."""
    c = lk.cost[(lk.target >= 0) & np.isfinite(lk.cost)].astype(np.float64)
    counts, _ = np.histogram(np.clip(c, edges[0], edges[-1]), bins=edges)
    q = np.quantile(c, QUANTILES).tolist() if c.size else [None] * len(QUANTILES)
    return {
        "src": lk.src,
        "dst": lk.dst,
        "counts": counts.tolist(),
        "quantiles": dict(zip([f"p{round(x * 100)}" for x in QUANTILES], q, strict=True)),
        "mean_cost": float(c.mean()) if c.size else None,
        "unmatched_share": lk.unmatched_share,
        "has_confidence": lk.confidence is not None,
    }


def agreement(exact: Link, adjacent: Sequence[Link], layers: Sequence[int]) -> float:
    """Share of exact.src features whose exact partner equals the composed path's (Sec. 3.2)."""
    cur = np.arange(exact.width)
    for lk in adjacent[list(layers).index(exact.src) : list(layers).index(exact.dst)]:
        cur = np.where(cur >= 0, lk.target[np.maximum(cur, 0)], -1)
    return float(np.mean((cur == exact.target) & (cur >= 0)))


def predecessors_from_graph(graph) -> dict[int, dict[int, list[Predecessor]]]:
    """{layer: {feature: [Predecessor]}} from a flow graph: any object with `.layers` (each with
    `.layer` and `.origin` (F,)) and `.predecessors(t, feature) -> [("module/layer/j", w)]`."""
    out: dict[int, dict[int, list[Predecessor]]] = {}
    for fl in graph.layers:
        t, per = int(fl.layer), {}
        for j in range(len(fl.origin)):
            edges = graph.predecessors(t, j)
            if edges:
                per[j] = [Predecessor(*_node(n), float(w)) for n, w in edges]
        out[t] = per
    return out


def _node(node_id: str) -> tuple[str, int, int]:
    """ "mlp/5/123" -> ("mlp", 5, 123)."""
    module, layer, index = str(node_id).split("/")
    return module, int(layer), int(index)


def cheapest_paths(data: ExplorerData, n: int, usable=lambda text: text is not None) -> list:
    """The n features of the first layer whose composed path to the last layer has the lowest
    summed step cost (Σ_t cost_t(path_t)), among those whose description passes `usable`
    (all, without descriptions); paths that end unmatched are left out. [(layer, feature)]."""
    total = np.zeros(data.width)
    cur = np.arange(data.width)
    for lk in data.adjacent:
        ok = cur >= 0
        total[ok] += lk.cost[cur[ok]]
        total[~ok] = np.inf
        cur = np.where(ok, lk.target[np.maximum(cur, 0)], -1)
    total[cur < 0] = np.inf
    texts = data.descriptions.get(data.layers[0])
    if texts is not None:
        total[[not usable(t) for t in texts]] = np.inf
    order = np.argsort(total, kind="stable")[:n]
    return [(data.layers[0], int(i)) for i in order if np.isfinite(total[i])]
