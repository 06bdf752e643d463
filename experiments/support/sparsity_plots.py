"""Figures of the sparsity sweep (App. A): Fig. 14 (ΔL, EV vs l0) and Fig. 15 (l0-matched set)."""

from __future__ import annotations

from saematch import plotting


def plot_sweep(rows: list[dict]):
    """Fig. 14: ΔL and EV vs measured l0 (SAE Match: mean l0 of the pair; encode-decode:
    the l0 of the SAE it uses; layer drop uses no SAE: a horizontal line)."""
    fig, axes = plotting.new_figure(1, 2, panel_size=(5.0, 3.4))
    for ax, key, y in zip(
        axes, ("delta_loss", "explained_variance"), ("delta_loss", "ev"), strict=True
    ):
        for m in ("sae_match", "encdec_current", "encdec_previous", "layer_drop"):
            sel = sorted((r for r in rows if r["method"] == m), key=lambda r: r["l0"])
            if m == "layer_drop" and sel:
                c = plotting.method_color(m)
                ax.axhline(sel[0][key], color=c, ls="--", label=plotting.method_label(m))
            elif sel:
                plotting.line_per_layer(ax, [r["l0"] for r in sel], [r[key] for r in sel], method=m)
        title = "Loss increase" if key == "delta_loss" else "Explained variance"
        plotting.label_axes(ax, x="l0", y=y, title=title, legend=key == "delta_loss")
    return fig


def plot_l0_matched(cands: dict, profiles: list[dict], prune: list[dict]):
    """Fig. 15: measured l0 per layer (candidates grey; default vs l0-matched set), and SAE
    Match pruning EV and ΔL per pair for both sets."""
    fig, (ax0, ax1, ax2) = plotting.new_figure(1, 3, panel_size=(4.2, 3.2))
    every = [c for cs in cands.values() for c in cs]
    ax0.scatter([c["layer"] for c in every], [c["l0"] for c in every], color=plotting.GREY, s=10)
    styles = {"default": (plotting.OKABE_ITO["blue"], "-"), "l0_matched": ("#D55E00", "--")}
    for name, (color, ls) in styles.items():  # dashed on top: identical sets stay visible
        kw = {"label": name.replace("_", "-"), "color": color, "ls": ls}
        for ax, rows, key in (
            (ax0, profiles, "l0"),
            (ax1, prune, "explained_variance"),
            (ax2, prune, "delta_loss"),
        ):
            sel = [r for r in rows if r["set"] == name]
            plotting.line_per_layer(ax, [r["layer"] for r in sel], [r[key] for r in sel], **kw)
    ax0.set_yscale("log")
    plotting.label_axes(ax0, x="layer", y="l0", title="Measured l0 (grey: candidates)")
    plotting.label_axes(ax1, x="layer_pair", y="ev", title="SAE Match pruning EV", legend=False)
    plotting.label_axes(
        ax2, x="layer_pair", y="delta_loss", title="SAE Match pruning ΔL", legend=False
    )
    return fig
