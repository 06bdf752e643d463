"""The shared plotting style: headless, fixed method colours, labels with units."""

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.colors import to_rgb

from saematch import plotting as P
from saematch.tracking import RunRecorder


def test_headless_backend():
    assert matplotlib.get_backend().lower() == "agg"


def test_method_colors_fixed_distinct_and_stable():
    main = ["folded", "unfolded", "vanilla", "layer_drop", "encdec_current", "encdec_previous"]
    assert len({P.method_color(m) for m in main}) == len(main)
    assert P.method_color("sae_match") == P.method_color("folded")
    assert P.method_color("some_new_method") == P.method_color("some_new_method")
    assert P.method_color("some_new_method") in P.PALETTE
    assert P.method_label("folded") == "folded + matched (SAE Match)"
    assert P.method_label("unknown") == "unknown"


def test_line_per_layer_uses_method_style_and_units(tmp_path):
    fig, axes = P.new_figure(1, 2, panel_size=(3.0, 2.0))
    assert tuple(fig.get_size_inches()) == (6.0, 2.0)
    assert matplotlib.rcParams["axes.grid"] is True
    ax = axes[0]
    line = P.line_per_layer(ax, [0, 1, 2], [0.1, 0.2, 0.4], method="folded")
    P.line_per_layer(ax, [0, 1, 2], [0.3, 0.3, 0.5], method="vanilla", label="identity")
    P.band_per_layer(ax, [0, 1, 2], [0.0, 0.1, 0.3], [0.2, 0.3, 0.5], method="folded")
    P.label_axes(ax, x="layer", y="delta_loss", title="pruning")
    assert to_rgb(line.get_color()) == to_rgb(P.METHOD_COLORS["folded"])
    assert line.get_label() == "folded + matched (SAE Match)"
    assert ax.get_ylabel() == "ΔL (nats / token)" and ax.get_xlabel() == "layer"
    assert [t.get_text() for t in ax.get_legend().get_texts()][1] == "identity"
    png, pdf = RunRecorder(tmp_path).add_figure("pruning", fig)
    assert png.stat().st_size > 1000 and pdf.read_bytes().startswith(b"%PDF")
    assert plt.get_fignums() == []


def test_ground_truth_variants_each_look_different():
    """Fig. 20: every mode x fold variant has its own (colour, line, marker); folded_encoder and
    unfolded_decoder used to share one hashed blue."""
    from saematch.planted.evaluate import GroundTruthReport
    from saematch.planted.metrics import Accuracy
    from saematch.planted.report import plot_report

    variants = ["vanilla"] + [f"{f}_{m}" for f in ("folded", "unfolded") for m in P.MODE_STYLES]
    one = Accuracy(0.5, 10, 5)
    acc = {v: {"0-1": one, "1-2": one} for v in variants}
    fig = plot_report(
        GroundTruthReport({0: 1.0, 1: 1.0}, acc, {1: {"composed": one, "exact": one}})
    )
    lines = fig.axes[1].get_lines()
    looks = {(to_rgb(ln.get_color()), ln.get_linestyle(), ln.get_marker()) for ln in lines}
    assert [ln.get_label() for ln in lines] == variants and len(looks) == len(variants)
    for v in variants[1:]:  # colour by fold, as every figure draws folded and unfolded
        want = P.METHOD_COLORS[v.split("_")[0]]
        assert to_rgb(P.variant_style(v)["color"]) == to_rgb(want)
    plt.close(fig)
