"""Feature flow across modules: a data-free graph of where residual features come from, its
check against activations, and steering along feature paths."""

from saematch.flow.build import build_flow_graph, source_rows
from saematch.flow.graph import (
    ORIGINS,
    SIMILARITIES,
    SOURCES,
    FlowGraph,
    FlowLayer,
    classify,
    flow_layer,
    top_predecessors,
)
from saematch.flow.store import load_flow_graph, save_flow_graph

__all__ = [
    "ORIGINS",
    "SIMILARITIES",
    "SOURCES",
    "FlowGraph",
    "FlowLayer",
    "build_flow_graph",
    "classify",
    "flow_layer",
    "load_flow_graph",
    "save_flow_graph",
    "source_rows",
    "top_predecessors",
]
