"""Figures of a comparison: the |cos| of matched pairs, per part and matching."""

from __future__ import annotations

import numpy as np

from saematch.compare.cosine import SHARE_COS
from saematch.plotting import new_figure


def cosine_figure(c):
    """Histogram of |cos| per part: the |cos|-optimal matching (PW-MCC's) and the MSE one's
    pairs, with the 0.7 line of the shared share."""
    parts = list(c.cosine)
    fig, axes = new_figure(1, len(parts), squeeze=False, panel_size=(4.2, 3.0))
    bins = np.linspace(0, 1, 41)
    for ax, part in zip(axes[0], parts, strict=True):
        cm = c.cosine[part]
        mse = np.abs(c.mse_pair_cos[part])
        ax.hist(np.abs(cm.cos), bins=bins, alpha=0.6, label=f"|cos| matching ({cm.pwmcc:.3f})")
        ax.hist(mse[np.isfinite(mse)], bins=bins, alpha=0.6, histtype="step", lw=1.5,
                label="MSE matching's pairs")  # fmt: skip
        ax.axvline(SHARE_COS, color="k", ls=":", lw=1)
        ax.set_xlabel(f"|cos| of matched {part} directions")
        ax.set_ylabel("pairs")
        ax.set_title(f"{part}: PW-MCC {cm.pwmcc:.3f}, > {SHARE_COS}: {cm.share_above():.0%}")
        ax.legend(fontsize=7)
    return fig
