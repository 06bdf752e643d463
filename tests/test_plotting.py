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
