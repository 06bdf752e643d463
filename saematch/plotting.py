"""One plotting style for every figure: fonts, grid, colour-blind-safe method colours, units.

Headless: selects the Agg backend unless pyplot is already loaded or MPLBACKEND is set.
Figures are saved by `RunRecorder.add_figure` (PNG + PDF).
"""

from __future__ import annotations

import os
import sys
import textwrap
import zlib
from collections.abc import Sequence
from typing import Any

import matplotlib

if "matplotlib.pyplot" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

# Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}
GREY = "#7A7A7A"
PALETTE = [OKABE_ITO[k] for k in ("blue", "orange", "green", "vermillion", "purple", "sky")]

# Every figure draws a method in the same colour.
METHOD_COLORS: dict[str, str] = {
    "folded": OKABE_ITO["blue"],  # SAE Match: fold (eq. 4), then match
    "unfolded": OKABE_ITO["orange"],  # match raw weights
    "vanilla": GREY,  # identity permutation
    "clean": OKABE_ITO["black"],
    "layer_drop": OKABE_ITO["vermillion"],
    "encdec_current": OKABE_ITO["green"],
    "encdec_previous": OKABE_ITO["purple"],
    "exact": OKABE_ITO["blue"],  # LAP between the two layers
    "composition": OKABE_ITO["sky"],  # composed adjacent permutations
    "encoder": OKABE_ITO["sky"],
    "decoder": OKABE_ITO["purple"],
    "both": OKABE_ITO["blue"],
    "SAME": OKABE_ITO["green"],
    "MAYBE": OKABE_ITO["orange"],
    "DIFFERENT": OKABE_ITO["vermillion"],
}
METHOD_COLORS["sae_match"] = METHOD_COLORS["folded"]
METHOD_COLORS["matched"] = METHOD_COLORS["unfolded"]

METHOD_LABELS: dict[str, str] = {
    "folded": "folded + matched (SAE Match)",
    "sae_match": "SAE Match",
    "sae_match_folded_transfer": "SAE Match, folded transfer",
    "sae_match_raw_transfer": "SAE Match, raw transfer",
    "sae_match_unfolded_folded_transfer": "unfolded matching, folded transfer",
    "sae_match_unfolded_raw_transfer": "unfolded matching, raw transfer",
    "unfolded": "matched (unfolded)",
    "matched": "matched (unfolded)",
    "vanilla": "vanilla (identity)",
    "clean": "clean model",
    "layer_drop": "layer drop",
    "encdec_current": "encode-decode current",
    "encdec_previous": "encode-decode previous",
    "exact": "exact LAP",
    "composition": "composition",
    "encoder": "encoder only",
    "decoder": "decoder only",
    "both": "encoder + decoder",
}

# Axis labels with units; keys are the metric names used in tables.
AXIS_LABELS: dict[str, str] = {
    "layer": "layer",
    "layer_pair": "layer pair (t → t+1)",
    "pruned_layer": "pruned layer",
    "delta_loss": "ΔL (nats / token)",
    "ce_loss": "CE loss (nats / token)",
    "ev": "explained variance",
    "mse": "MSE (mean over d_model)",
    "decoder_mse": "decoder MSE (mean over d_model)",
    "encoder_mse": "encoder MSE (mean over d_model)",
    "bias_mse": "b_enc squared difference",
    "matching_score": "matching score (fraction of activations)",
    "l0": "L0 (active features / token)",
    "quantile": "MSE quantile q",
    "count": "count (features)",
    "judge_score": "mean judge score (1 = different, 3 = same)",
    "hidden_norm": "mean ‖x‖₂ of resid_post",
    "theta": "mean threshold θ",
}

STYLE: dict[str, Any] = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "lines.linewidth": 1.6,
    "lines.markersize": 4,
    "figure.constrained_layout.use": True,
    "pdf.fonttype": 42,  # embed TrueType: text stays editable/searchable in the PDF
    "svg.fonttype": "none",
}


def setup_style() -> None:
    """Apply the project style to matplotlib's global rcParams (idempotent)."""
    matplotlib.rcParams.update(STYLE)


def method_color(method: str) -> str:
    """The fixed colour of a method; unknown names get a stable palette colour by hash."""
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    return PALETTE[zlib.crc32(method.encode()) % len(PALETTE)]


MODE_STYLES = {"both": ("-", "o"), "encoder": ("--", "^"), "decoder": (":", "s")}


def variant_style(variant: str) -> dict[str, str]:
    """Line keywords of a matching variant `<folded|unfolded>_<mode>`: colour by fold (folded
    blue, unfolded orange, as in every figure), line style and marker by mode, so no two
    variants look alike; any other name: {"color": method_color(name)}."""
    fold, _, mode = variant.partition("_")
    if fold in ("folded", "unfolded") and mode in MODE_STYLES:
        linestyle, marker = MODE_STYLES[mode]
        return {"color": METHOD_COLORS[fold], "linestyle": linestyle, "marker": marker}
    return {"color": method_color(variant)}


def method_label(method: str) -> str:
    """The legend text of a method (its key when unknown)."""
    return METHOD_LABELS.get(method, method)


def axis_label(name: str) -> str:
    """The axis label with units for a metric name (the name itself when unknown)."""
    return AXIS_LABELS.get(name, name)


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    panel_size: tuple[float, float] = (4.0, 3.0),
    sharex: bool = False,
    sharey: bool = False,
    squeeze: bool = True,
    **subplot_kw: Any,
):
    """A styled (fig, axes) grid; each panel is `panel_size` inches (width, height)."""
    setup_style()
    w, h = panel_size
    return plt.subplots(
        nrows, ncols, figsize=(w * ncols, h * nrows), sharex=sharex, sharey=sharey,
        squeeze=squeeze, **subplot_kw,
    )  # fmt: skip


def line_per_layer(
    ax,
    layers: Sequence[float],
    values: Sequence[float],
    label: str | None = None,
    *,
    method: str | None = None,
    color: str | None = None,
    marker: str = "o",
    **kwargs: Any,
):
    """Plot one metric against layer with the method's colour and label; returns the Line2D.

    `method` picks colour and default label from METHOD_COLORS/METHOD_LABELS; the x axis
    gets integer ticks.
    """
    if method is not None:
        color = color or method_color(method)
        label = label if label is not None else method_label(method)
    (line,) = ax.plot(list(layers), list(values), marker=marker, color=color, label=label, **kwargs)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return line


def band_per_layer(
    ax,
    layers: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    *,
    method: str | None = None,
    color: str | None = None,
    alpha: float = 0.2,
    **kwargs: Any,
):
    """Shade a range (e.g. an inter-quantile band) per layer in the method's colour."""
    color = color or (method_color(method) if method else None)
    return ax.fill_between(
        list(layers), list(low), list(high), color=color, alpha=alpha, linewidth=0, **kwargs
    )


def label_axes(
    ax,
    x: str | None = "layer",
    y: str | None = None,
    title: str | None = None,
    legend: bool = True,
) -> None:
    """Set axis labels (metric names map to labels with units) and draw the legend if any."""
    if x is not None:
        ax.set_xlabel(axis_label(x))
    if y is not None:
        ax.set_ylabel(axis_label(y))
    if title is not None:
        ax.set_title(title)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend()


def short_text(text: str | None, width: int, lines: int) -> str:
    """A description wrapped to `lines` lines of `width` characters (… when cut), for a figure."""
    if not text:
        return "(no description)"
    one = " ".join(str(text).split())
    return "\n".join(textwrap.wrap(one, width, max_lines=lines, placeholder="…"))
