"""The paper's setup rehearsed offline (scripts/rehearse_paper.py).

Fast: what the script builds (the hub cache layout of the model and of the SAE set) is what
`model=gemma2_2b saes=gemma_scope_paper` and `model=llama31_8b saes=llama_scope_8x` read, offline,
checked on tiny dimensions in a fresh process (huggingface_hub reads HF_HUB_CACHE at import).
Slow (-m slow): the script end to end at a small width, every experiment under its memory
guard; the full size (26 layers x 16k) is `python scripts/rehearse_paper.py`, minutes to an hour.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "rehearse_paper.py"
# tiny dimensions of the same architectures: the layout is under test, not the size
TINY = {
    "gemma2_2b": dict(hidden_size=64, intermediate_size=128, num_attention_heads=2,
                      num_key_value_heads=1, head_dim=32, query_pre_attn_scalar=32,
                      vocab_size=4096),
    "llama31_8b": dict(hidden_size=64, intermediate_size=128, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=4096),
}  # fmt: skip
READ = """
import json, sys
from hydra import compose, initialize_config_module
from saematch_experiments.harness.config_location import CONFIG_PACKAGE
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.schema import register_schemas
register_schemas()
with initialize_config_module(CONFIG_PACKAGE, version_base="1.3"):
    cfg = compose("config", overrides=sys.argv[2:])
ctx = Context(cfg, sys.argv[1])
lm, saes = ctx.lm, ctx.saes
c = lm.model.config
print(json.dumps({"n_layers": lm.n_layers, "d_model": c.hidden_size, "vocab": c.vocab_size,
                  "layers": list(saes), "widths": [saes[L].width for L in saes],
                  "d_saes": [saes[L].d_model for L in saes],
                  "W_dec0": saes[0].W_dec[0, :4].tolist(), "names": [saes[L].name for L in saes]}))
"""


def _script():
    spec = importlib.util.spec_from_file_location("rehearse_paper", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", ["gemma2_2b", "llama31_8b"])
def test_built_layout_is_what_the_presets_read_offline(name, tmp_path):
    mod = _script()
    preset = mod.PRESETS[name]
    config = mod.model_config(preset, 2, **TINY[name])
    mod.build_model(tmp_path, preset, config)
    mod.build_saes(tmp_path, preset, [0, 1], width=32, d_model=config["hidden_size"])
    args = [f"model={preset.model_cfg}", "model.device=cpu", "model.dtype=float32",
            f"saes={preset.saes_cfg}", "saes.layers=[0,1]", "logger=none",
            f"paths.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hub"), PYTHONPATH=path)
    got = subprocess.run(
        [sys.executable, "-c", READ, str(tmp_path / "run"), *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr[-3000:]
    out = json.loads(got.stdout.strip().splitlines()[-1])
    assert out["n_layers"] == 2 and out["d_model"] == 64 and out["vocab"] == 4096
    assert out["layers"] == [0, 1] and out["widths"] == [32, 32] and out["d_saes"] == [64, 64]
    ids = mod.sae_ids(preset)
    assert [n.endswith(ids[L]) for L, n in enumerate(out["names"])] == [True, True]
    # the weights read are the ones written (Llama Scope's rescale is 1: its norm is sqrt(d))
    snap = tmp_path / "hub" / f"models--{preset.sae_repo.replace('/', '--')}" / "snapshots"
    if preset.sae_layout == "gemma_scope":
        W_dec = np.load(next(snap.glob(f"*/{ids[0]}/params.npz")))["W_dec"]
    else:
        from safetensors.numpy import load_file

        W_dec = load_file(next(snap.glob(f"*/{ids[0]}/checkpoints/final.safetensors")))
        W_dec = W_dec["decoder.weight"].T
    np.testing.assert_allclose(out["W_dec0"], W_dec[0, :4], rtol=1e-6)


def test_a_root_holds_one_build(tmp_path):
    mod = _script()
    mod.check_root(tmp_path, {"preset": "gemma2_2b", "width": 1024})
    mod.check_root(tmp_path, {"preset": "gemma2_2b", "width": 1024})  # the same: fine
    with pytest.raises(SystemExit, match="Pass another --root"):
        mod.check_root(tmp_path, {"preset": "gemma2_2b", "width": 16384})
    # a root built before SAE recipes were recorded holds recipe 1's SAEs: not reused as 2's
    with pytest.raises(SystemExit, match="sae_recipe"):
        mod.check_root(tmp_path, {"preset": "gemma2_2b", "width": 1024, "sae_recipe": 2})


def test_report_writes_the_marked_section_from_the_records(tmp_path):
    mod = _script()
    docs, data = tmp_path / "benchmarks.md", tmp_path / "data" / "rehearsal.json"
    docs.write_text("# Benchmarks\n\nsomething measured\n")
    rec = {"preset": "gemma2_2b", "width": 16384, "layers": [0, 25], "experiment": "mse_curves",
           "model_layers": 26, "d_model": 2304, "status": "ok", "seconds": 1234.5,
           "cpu_seconds": 2400.0, "peak_gb": 3.21, "peak_anon_gb": 2.5, "load_start": 1.5,
           "load_end": 2.0, "bound_backend": ["fp32"], "matchings_computed": 50,
           "gemm_gflops": {"float32": 20.0, "bfloat16": 0.2}, "commit": "abc1234",
           "started": "2026-12-05 20:00 UTC", "command": "experiment=mse_curves ...",
           "vocab_size": 256000, "sae_recipe": 2}  # fmt: skip
    src = tmp_path / "rehearsal.json"
    src.write_text(json.dumps([dict(rec, seconds=9.0), rec]))  # the later record wins
    mod.report([src], docs, data)
    text = docs.read_text()
    assert text.startswith("# Benchmarks\n\nsomething measured\n")
    assert (
        "| 1,234 s (2,400 s) | 3.21 GB (anon 2.50) | 1.5 → 2.0 | fp32 | 50 | 2 | abc1234, "
        "2026-12-05 20:00 UTC | 20 / 0.2 |" in text
    )
    assert "9 s" not in text and json.loads(data.read_text()) == [rec]
    mod.report([src], docs, data)  # again: the section is replaced, not appended
    assert docs.read_text() == text
    old = {k: v for k, v in rec.items() if k != "sae_recipe"}  # a record from before the field
    src.write_text(json.dumps([old]))
    mod.report([src], docs, tmp_path / "old.json")
    assert "| fp32 | 50 | 1 | abc1234" in docs.read_text()  # recipe 1: the unrelated layers
    llama = dict(rec, preset="llama31_8b", width=32768, layers=[0, 1], model_layers=2)
    src.write_text(json.dumps([llama]))
    mod.report([src], docs, tmp_path / "llama.json")
    text = docs.read_text()  # the published width on fewer blocks: said, and not as the full set
    assert (
        "**llama31_8b, at the published width 32,768 with fewer blocks** (every SAE layer "
        "of a 2-block build): mse_curves recorded complete." in text
    )
    assert "SAE layers 0–3 of its 4-block build, width 32,768:** no experiment" in text


@pytest.mark.slow
def test_rehearsal_runs_end_to_end_at_a_small_width(tmp_path):
    """Every experiment through the CLI on a small width (the model: 3 blocks of Gemma 2 2B with
    the stand-in tokenizer's vocabulary, so it fits 2 GB); a minute or two."""
    root = Path(os.environ.get("SAEMATCH_REHEARSAL_SMALL", tmp_path / "rehearsal"))
    argv = ["--root", str(root), "--width", "1024", "--layers", "0-2", "--model-layers", "3",
            "--vocab-size", "4096", "--max-gb", "2.5"]  # fmt: skip
    rows = _script().main(argv)
    assert [r["experiment"] for r in rows] == ["mse_curves", "layer_pruning", "explorer"]
    for r in rows:
        assert r["status"] == "ok", r
        assert 0 < r["peak_gb"] < 2.5 and r["seconds"] > 0
        results = json.loads((Path(r["run_dir"]) / "results.json").read_text())
        assert results["status"] == "ok"
    curves = json.loads((Path(rows[0]["run_dir"]) / "results.json").read_text())["results"]
    assert sorted(curves["layers"]) == ["0", "1"]
    # a fresh root: mse_curves solves 2 pairs x (unfolded, folded); the others read them
    assert [r["matchings_computed"] for r in rows] == [4, 0, 0]
