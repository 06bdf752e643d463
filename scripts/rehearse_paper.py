"""Rehearse the paper's setup at full size, offline: Gemma 2 2B's architecture with random weights
and 26 Gemma Scope-layout 16k SAEs, through `saematch model=gemma2_2b saes=gemma_scope_paper`.

    python scripts/rehearse_paper.py --root /work/cache/rehearsal            # build, then run
    python scripts/rehearse_paper.py --root ... --layers 0-3 --experiments layer_pruning
    python scripts/rehearse_paper.py --root ... matching.solver=lapjv     # any saematch override

What is built (once; kept under --root, reused on later runs):
  hub/models--google--gemma-2-2b/snapshots/<rev>/   Gemma2ForCausalLM with google/gemma-2-2b's
      published config values (26 layers, d_model 2304, vocab 256000, …), random bf16 weights,
      and a stand-in byte-level BPE tokenizer (the real one is not needed to exercise shapes).
  hub/models--google--gemma-scope-2b-pt-res/snapshots/<rev>/layer_L/width_16k/average_l0_K/
      params.npz for every id of the paper's set (Table 1), float32 as published:
      W_dec rows unit norm; W_dec of layer L+1 = a hidden permutation of layer L's plus drift,
      so matching has something to find; W_enc = W_decᵀ plus noise; θ log-normal (σ 0.5)
      around a median rising from 0.5 (layer 0) to 8 (layer 25) as residual norms do; b_enc
      = −θ/2, b_dec small. (Assumptions about shape and scale, not the published values.)

Each experiment runs as its own `saematch` process (nice -n 5) with HF_HUB_OFFLINE=1 and
HF_HUB_CACHE pointing at --root/hub; this script polls it every second and stops it when its
resident memory passes --max-gb or the machine's available memory falls under --min-free-gb.
Time and peak resident memory (VmHWM) of each run go to --root/rehearsal.json and stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
REV = "0" * 40
MODEL_REPO, SAE_REPO = "google/gemma-2-2b", "google/gemma-scope-2b-pt-res"
# google/gemma-2-2b config.json (published values)
GEMMA2_2B = dict(
    vocab_size=256000, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
    num_attention_heads=8, num_key_value_heads=4, head_dim=256,
    hidden_activation="gelu_pytorch_tanh", max_position_embeddings=8192, rms_norm_eps=1e-6,
    rope_theta=10000.0, attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
    query_pre_attn_scalar=256, sliding_window=4096, bos_token_id=2, eos_token_id=1,
    pad_token_id=0, tie_word_embeddings=True, attn_implementation="eager",
)  # fmt: skip
WIDTH = 16384
EXPERIMENTS = {  # experiment -> its extra overrides (explorer: no descriptions, no exact LAPs)
    "mse_curves": [],
    "layer_pruning": ["experiment.baselines=true"],
    "explorer": ["experiment.exact_starts=[]", "experiment.descriptions=false"],
}


def snapshot(root: Path, repo: str) -> Path:
    """The snapshot folder of `repo` in the HF cache at root/hub (refs/main -> REV)."""
    base = root / "hub" / f"models--{repo.replace('/', '--')}"
    (base / "refs").mkdir(parents=True, exist_ok=True)
    (base / "refs" / "main").write_text(REV)
    snap = base / "snapshots" / REV
    snap.mkdir(parents=True, exist_ok=True)
    return snap


def build_model(root: Path) -> Path:
    """Gemma 2 2B's architecture, random bf16 weights, saved in the hub cache layout."""
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    from saematch.data import stdlib_texts
    from saematch.zoo.tokenizer import train_tokenizer

    snap = snapshot(root, MODEL_REPO)
    if (snap / "config.json").exists() and list(snap.glob("*.safetensors")):
        return snap
    t0 = time.perf_counter()
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)  # never hold a float32 copy (10.4 GB)
    model = Gemma2ForCausalLM(Gemma2Config(**GEMMA2_2B)).eval()
    torch.set_default_dtype(torch.float32)
    model.save_pretrained(snap, max_shard_size="2GB")
    del model
    train_tokenizer(stdlib_texts("code")[:200], vocab_size=4096).save_pretrained(snap)
    print(f"model: built in {time.perf_counter() - t0:.0f} s -> {snap}", flush=True)
    return snap


def build_saes(root: Path, layers: list[int]) -> Path:
    """Gemma Scope-layout params.npz for the paper's ids of `layers` (module docstring)."""
    from saematch.sources.sets import gemma_scope_paper_ids

    snap = snapshot(root, SAE_REPO)
    ids = gemma_scope_paper_ids()
    d, rng = GEMMA2_2B["hidden_size"], np.random.default_rng(0)
    W_dec = rng.standard_normal((WIDTH, d), dtype=np.float32)
    for L in range(max(layers) + 1):  # every layer up to the last asked: drift is cumulative
        if L > 0:
            drift = rng.standard_normal((WIDTH, d), dtype=np.float32)
            W_dec = W_dec[rng.permutation(WIDTH)] + 0.3 * drift
        W_dec /= np.linalg.norm(W_dec, axis=1, keepdims=True)
        path = snap / ids[L] / "params.npz"
        if L not in layers or path.exists():
            continue
        median = 0.5 * (8.0 / 0.5) ** (L / 25)  # 0.5 at layer 0 -> 8 at layer 25
        theta = (median * np.exp(0.5 * rng.standard_normal(WIDTH))).astype(np.float32)
        W_enc = (W_dec.T + 0.1 * rng.standard_normal((d, WIDTH), dtype=np.float32)) * 2.0
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, W_enc=W_enc, W_dec=W_dec, b_enc=-theta / 2, threshold=theta,
                 b_dec=(0.01 * rng.standard_normal(d)).astype(np.float32))  # fmt: skip
        tmp.rename(path)
    return snap


def mem_available_gb() -> float:
    """MemAvailable of /proc/meminfo, in GB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def peak_rss_gb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process, in GB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        return None
    return None


def run_one(root: Path, experiment: str, args, extra: list[str]) -> dict:
    """One `saematch` run under the memory guard: {experiment, status, seconds, peak_gb, ...}."""
    first, last = args.layers[0], args.layers[-1]
    cmd = [
        "nice", "-n", "5", str(Path(sys.executable).parent / "saematch"),
        f"experiment={experiment}", "model=gemma2_2b", "model.device=cpu",
        f"model.batch_size={args.n_examples}", "saes=gemma_scope_paper",
        f"saes.layers=[{first},{last}]", "data=stdlib", f"data.n_examples={args.n_examples}",
        f"data.seq_len={args.seq_len}", "logger=none", f"paths.output_root={root / 'outputs'}",
        *extra, *args.overrides,
    ]  # fmt: skip
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(root / "hub"),
               SAEMATCH_CACHE=str(root / "saematch-cache"), PYTHONUNBUFFERED="1")  # fmt: skip
    log = root / f"{experiment}.log"
    t0, peak, status = time.perf_counter(), 0.0, "ok"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root,
                                start_new_session=True)  # fmt: skip
        while proc.poll() is None:
            time.sleep(1.0)
            peak = max(peak, peak_rss_gb(proc.pid) or 0.0)
            why = None
            if peak > args.max_gb:
                why = f"stopped: resident {peak:.1f} GB > --max-gb {args.max_gb}"
            elif mem_available_gb() < args.min_free_gb:
                why = f"stopped: machine has < {args.min_free_gb} GB available"
            if why:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
                status = why
                break
    seconds = time.perf_counter() - t0
    if status == "ok" and proc.returncode != 0:
        status = f"failed (exit {proc.returncode}): see {log}"
    return {"experiment": experiment, "layers": [first, last], "status": status,
            "seconds": round(seconds, 1), "peak_gb": round(peak, 2), "log": str(log),
            "command": " ".join(cmd[3:])}  # fmt: skip


def parse_layers(text: str) -> list[int]:
    a, _, b = text.partition("-")
    return list(range(int(a), int(b or a) + 1))


def main(argv: list[str] | None = None) -> list[dict]:
    """Build what is missing, run each experiment, print and save time and peak memory."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=Path("/work/cache/rehearsal"))
    p.add_argument("--layers", type=parse_layers, default=parse_layers("0-25"), help="e.g. 0-3")
    p.add_argument("--experiments", default=",".join(EXPERIMENTS))
    p.add_argument("--n-examples", type=int, default=2)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--max-gb", type=float, default=12.0)
    p.add_argument("--min-free-gb", type=float, default=4.0)
    p.add_argument("--build-only", action="store_true")
    p.add_argument(
        "overrides", nargs="*", help="more saematch overrides, e.g. matching.solver=lapjv"
    )
    args = p.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    build_model(args.root)
    build_saes(args.root, args.layers)
    if args.build_only:
        return []
    rows = []
    for name in args.experiments.split(","):
        rows.append(run_one(args.root, name, args, EXPERIMENTS[name]))
        r = rows[-1]
        took = f"{r['seconds']:7.1f} s  peak {r['peak_gb']:5.2f} GB"
        print(f"{name:14s} layers {r['layers']}  {took}  {r['status']}", flush=True)
    out = args.root / "rehearsal.json"
    old = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps(old + rows, indent=2))
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
