"""The paper's setup at full size, offline (scripts/rehearse_paper.py): slow, run with -m slow.

Builds (once, under $SAEMATCH_REHEARSAL or /work/cache/rehearsal) Gemma 2 2B's architecture
with random bf16 weights and Gemma Scope-layout 16k SAEs, then runs mse_curves, layer_pruning
and explorer on them through the `saematch` command under a memory guard.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "rehearse_paper.py"


@pytest.mark.slow
def test_paper_setup_runs_at_full_size():
    spec = importlib.util.spec_from_file_location("rehearse_paper", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    root = os.environ.get("SAEMATCH_REHEARSAL", "/work/cache/rehearsal")
    layers = os.environ.get("SAEMATCH_REHEARSAL_LAYERS", "0-3")
    rows = mod.main(["--root", root, "--layers", layers])
    assert [r["experiment"] for r in rows] == list(mod.EXPERIMENTS)
    for r in rows:
        assert r["status"] == "ok", r
        assert 0 < r["peak_gb"] < 12
