"""The flow graph file: `<name>.safetensors` (tensors) + `<name>.json` (ids, settings, provenance).

Tensors, for every target layer t of the graph and source s ∈ {res, mlp, att}:

    {s}_index_{t}   int64 (F_t, k)  top-k candidate feature ids in the source SAE (res: layer
                                    t−1, mlp/att: layer t), best first
    {s}_score_{t}   float32 (F_t, k) their scores; a candidate is an edge iff score ≥ threshold
    origin_{t}      int8 (F_t,)     0 persisting, 1 created by MLP, 2 created by attention,
                                    3 unclear
    {s}_null_{t}    float32 (F_t,)  best score against randomly rotated source rows (chance
                                    level; absent when not computed)

The JSON sidecar holds `format`, `similarity`, `top_k`, `threshold`, `layers`, `sources`,
`origins`, the node id scheme (`res/<layer>/<feature>`, `mlp/…`, `att/…`), `saes` (node set ->
name, site, width, fingerprint) and `notes`. No pickle anywhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors.torch import load_file, save

from saematch.atomic import atomic_write_bytes, atomic_write_text
from saematch.flow.graph import ORIGINS, SOURCES, FlowGraph, FlowLayer

FORMAT = "saematch-flow-graph/1"
SOURCE_NODES = {"res": "res/<t-1>/<j>: residual SAE of layer t-1",
                "mlp": "mlp/<t>/<j>: MLP-output SAE of layer t",
                "att": "att/<t>/<j>: attention SAE of layer t"}  # fmt: skip


def save_flow_graph(graph: FlowGraph, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write `path`.safetensors and `path`.json (any suffix of `path` is replaced)."""
    base = Path(path).with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for fl in graph.layers:
        for s in SOURCES:
            tensors[f"{s}_index_{fl.layer}"] = fl.index[s].contiguous()
            tensors[f"{s}_score_{fl.layer}"] = fl.score[s].float().contiguous()
        tensors[f"origin_{fl.layer}"] = fl.origin.contiguous()
        for s, v in fl.null_best.items():
            tensors[f"{s}_null_{fl.layer}"] = v.float().contiguous()
    meta = {
        "format": FORMAT,
        "similarity": graph.similarity,
        "top_k": graph.top_k,
        "threshold": graph.threshold,
        "layers": [fl.layer for fl in graph.layers],
        "sources": SOURCE_NODES,
        "node_id": "<set>/<layer>/<feature>, set in res|mlp|att; targets are res/<t>/<i>",
        "origins": list(ORIGINS),
        "shares": {str(fl.layer): fl.shares() for fl in graph.layers},
        "saes": graph.saes,
        "notes": graph.notes,
    }
    st, js = base.with_suffix(".safetensors"), base.with_suffix(".json")
    atomic_write_bytes(st, save(tensors, metadata={"format": FORMAT}))
    atomic_write_text(js, json.dumps(meta, indent=2))
    return st, js


def load_flow_graph(path: str | os.PathLike) -> FlowGraph:
    """Read a graph written by save_flow_graph (pass either file, or the shared stem)."""
    base = Path(path).with_suffix("")
    js, st = base.with_suffix(".json"), base.with_suffix(".safetensors")
    for p in (js, st):
        if not p.is_file():
            raise FileNotFoundError(f"{p} is missing; a flow graph is a .safetensors + .json pair")
    meta = json.loads(js.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{js} has format {meta.get('format')!r}, expected {FORMAT!r}")
    tensors = load_file(str(st))
    layers = []
    for t in meta["layers"]:
        try:
            index = {s: tensors[f"{s}_index_{t}"] for s in SOURCES}
            score = {s: tensors[f"{s}_score_{t}"] for s in SOURCES}
            origin = tensors[f"origin_{t}"]
        except KeyError as e:
            raise ValueError(f"{st} lacks tensor {e} listed by {js}; rewrite the graph") from None
        null = {s: tensors[f"{s}_null_{t}"] for s in SOURCES if f"{s}_null_{t}" in tensors}
        layers.append(FlowLayer(int(t), index, score, origin, null))
    return FlowGraph(layers, meta["similarity"], int(meta["top_k"]), float(meta["threshold"]),
                     meta.get("saes", {}), meta.get("notes", {}))  # fmt: skip
