"""Rehearse the paper's setup at full size, offline: a published model's architecture with random
weights and its SAE set in the published layout, through `saematch model=<preset>
saes=<its set>`, reporting time and peak memory of each experiment.

    python scripts/rehearse_paper.py                                   # Gemma 2 2B, 26 x 16k
    python scripts/rehearse_paper.py --root /work/cache/rehearsal-small --width 1024 --layers 0-2
    python scripts/rehearse_paper.py --preset llama31_8b --layers 0-2  # 4 of Llama's 32 blocks
    python scripts/rehearse_paper.py ... matching.solver=lapjv         # any saematch override
    python scripts/rehearse_paper.py --report                          # docs/benchmarks.md

Presets (what is built once under --root and reused; a root holds one preset and one width):
  gemma2_2b   hub/models--google--gemma-2-2b: Gemma2ForCausalLM with google/gemma-2-2b's
      published config (26 blocks, d_model 2304, vocab 256000), random bf16 weights; SAEs
      google/gemma-scope-2b-pt-res layer_L/width_16k/average_l0_K/params.npz for the paper's ids
      (Table 1), float32 as published; read by `model=gemma2_2b saes=gemma_scope_paper`.
  llama31_8b  hub/models--meta-llama--Llama-3.1-8B: LlamaForCausalLM with meta-llama/Llama-3.1-8B's
      published config except num_hidden_layers (--model-layers, default 4 of 32: the real
      model is 16 GB in bf16, 32 GB in float32, more than this machine can lend), random bf16
      weights; SAEs fnlp/Llama3_1-8B-Base-LXR-8x Llama3_1-8B-Base-L{L}R-8x/{hyperparams.json,
      checkpoints/final.safetensors} at the real 8x width (32k), float32; read by
      `model=llama31_8b saes=llama_scope_8x`.
Both use a stand-in byte-level BPE tokenizer (the real one is not needed to exercise shapes).

The SAEs are random but shaped like trained ones (assumptions about shape and scale, not the
published values): W_dec rows unit norm; layer L+1's W_dec = a hidden permutation of layer L's
plus drift of norm 0.3 (cos ≈ 0.96 to its partner), so matching has something to find; W_enc =
2(W_decᵀ + noise of norm 0.75 per column: cos ≈ 0.8 to the decoder row); θ log-normal (σ 0.5)
around a median rising from 0.5 (first layer) to 8 (layer 25) as residual norms do; b_enc =
−θ/2; b_dec small. Llama Scope has one scalar threshold per SAE: the median, with the input
norm `dataset_average_activation_norm` = sqrt(d_model) (no rescale).
The encoder's noise and log θ are carried from a feature to its partner with correlation 0.9
(trained SAEs' θ are: docs/trainer.md), so a folded pair has clear partners too (at width 2,048:
3 % of rows left to the solver's dense rest, against all of them with recipe 1, SAE_RECIPE).

--width (default: the preset's published width) makes a small rehearsal for development and
the tests (e.g. --width 1024 --layers 0-2 in a root of its own: the ids still say width_16k).

Each experiment runs as its own `saematch` process (nice --nice) with HF_HUB_OFFLINE=1 and
HF_HUB_CACHE at --root/hub, the model in --model-dtype (float32: this CPU has no bf16 GEMM, see
--model-dtype). This script polls it every second and stops it when its resident memory passes
--max-gb or the machine's available memory falls under --min-free-gb. Per experiment it
appends to --root/rehearsal.json: seconds, peak resident memory (VmHWM), status, the load
average at start and end, the matching bound backend where the run reports one, the commit.
--report turns those records into the marked section of docs/benchmarks.md (and keeps the
records it used in docs/data/rehearsal.json), so no number there is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
REV = "0" * 40
DOCS, DOCS_DATA = REPO / "docs" / "benchmarks.md", REPO / "docs" / "data" / "rehearsal.json"
BEGIN, END = "<!-- rehearse_paper:begin -->", "<!-- rehearse_paper:end -->"

# google/gemma-2-2b config.json (published values)
GEMMA2_2B = dict(
    vocab_size=256000, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
    num_attention_heads=8, num_key_value_heads=4, head_dim=256,
    hidden_activation="gelu_pytorch_tanh", max_position_embeddings=8192, rms_norm_eps=1e-6,
    rope_theta=10000.0, attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
    query_pre_attn_scalar=256, sliding_window=4096, bos_token_id=2, eos_token_id=1,
    pad_token_id=0, tie_word_embeddings=True, attn_implementation="eager",
)  # fmt: skip
# meta-llama/Llama-3.1-8B config.json (published values; num_hidden_layers is --model-layers)
LLAMA31_8B = dict(
    vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
    num_attention_heads=32, num_key_value_heads=8, hidden_act="silu",
    max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
    rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    bos_token_id=128000, eos_token_id=128001, tie_word_embeddings=False,
    attention_bias=False, mlp_bias=False,
)  # fmt: skip


@dataclass(frozen=True)
class Preset:
    """A published model and SAE set: what is built, and the saematch config that reads it."""

    model_repo: str
    config_class: str  # transformers class of the config
    model_class: str  # transformers class of the model
    config: dict = field(repr=False)
    sae_repo: str = ""
    sae_layout: str = ""  # gemma_scope | llama_scope
    width: int = 0  # the published width of the set
    model_cfg: str = ""  # saematch's model= preset
    saes_cfg: str = ""  # saematch's saes= set
    model_layers: int | None = None  # None: the published number of blocks


PRESETS = {
    "gemma2_2b": Preset(
        "google/gemma-2-2b", "Gemma2Config", "Gemma2ForCausalLM", GEMMA2_2B,
        "google/gemma-scope-2b-pt-res", "gemma_scope", 16384, "gemma2_2b", "gemma_scope_paper",
    ),
    "llama31_8b": Preset(
        "meta-llama/Llama-3.1-8B", "LlamaConfig", "LlamaForCausalLM", LLAMA31_8B,
        "fnlp/Llama3_1-8B-Base-LXR-8x", "llama_scope", 32768, "llama31_8b", "llama_scope_8x",
        model_layers=4,
    ),
}  # fmt: skip
# experiment -> its extra overrides. layer_pruning: SAE Match only (each further method is
# another 25 partial forwards of the model, ~20 s each on 2 cores); explorer: no descriptions,
# no exact LAPs beyond the adjacent ones, one model pass for the matching score.
EXPERIMENTS = {
    "mse_curves": [],
    "layer_pruning": ["experiment.baselines=false", "experiment.other_transfer=false"],
    "explorer": ["experiment.exact_starts=[]", "experiment.descriptions=false"],
}
NEEDS_MODEL = ("layer_pruning", "explorer")


def snapshot(root: Path, repo: str) -> Path:
    """The snapshot folder of `repo` in the HF cache at root/hub (refs/main -> REV)."""
    base = root / "hub" / f"models--{repo.replace('/', '--')}"
    (base / "refs").mkdir(parents=True, exist_ok=True)
    (base / "refs" / "main").write_text(REV)
    snap = base / "snapshots" / REV
    snap.mkdir(parents=True, exist_ok=True)
    return snap


def model_config(preset: Preset, model_layers: int | None, **changes) -> dict:
    """The preset's published config values, with `model_layers` blocks and any `changes`."""
    cfg = dict(preset.config, **changes)
    if model_layers is not None:
        cfg["num_hidden_layers"] = model_layers
    return cfg


def build_model(root: Path, preset: Preset, config: dict) -> Path:
    """The preset's architecture (`config`), random bf16 weights, in the hub cache layout."""
    snap = snapshot(root, preset.model_repo)
    if (snap / "config.json").exists() and list(snap.glob("*.safetensors")):
        return snap  # built: no need to import transformers (slow to import)
    import torch
    import transformers

    from saematch.data import stdlib_texts
    from saematch.zoo.tokenizer import train_tokenizer

    t0 = time.perf_counter()
    torch.manual_seed(0)
    conf = getattr(transformers, preset.config_class)(**config)
    torch.set_default_dtype(torch.bfloat16)  # never hold a float32 copy (10.4 GB for Gemma)
    try:
        model = getattr(transformers, preset.model_class)(conf).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    model.save_pretrained(snap, max_shard_size="2GB")
    del model
    train_tokenizer(stdlib_texts("code")[:200], vocab_size=4096).save_pretrained(snap)
    print(f"model: built in {time.perf_counter() - t0:.0f} s -> {snap}", flush=True)
    return snap


def sae_ids(preset: Preset) -> dict[int, str]:
    """layer -> sae_id of the preset's set, every layer the set publishes."""
    from saematch.sources.set_ids import llama_scope_ids
    from saematch.sources.sets import gemma_scope_paper_ids

    return gemma_scope_paper_ids() if preset.sae_layout == "gemma_scope" else llama_scope_ids()


def sae_files(snap: Path, preset: Preset, sae_id: str) -> list[Path]:
    """The files one SAE of the preset's layout is read from."""
    if preset.sae_layout == "gemma_scope":
        return [snap / sae_id / "params.npz"]
    return [snap / sae_id / "hyperparams.json", snap / sae_id / "checkpoints" / "final.safetensors"]


def write_sae(snap: Path, preset: Preset, sae_id: str, layer: int, arrays: dict) -> None:
    """One SAE in the preset's published layout (a temp file renamed: never half written)."""
    W_enc, W_dec, theta, b_dec = arrays["W_enc"], arrays["W_dec"], arrays["theta"], arrays["b_dec"]
    files = sae_files(snap, preset, sae_id)
    files[-1].parent.mkdir(parents=True, exist_ok=True)
    if preset.sae_layout == "gemma_scope":
        tmp = files[0].with_suffix(".tmp.npz")
        np.savez(tmp, W_enc=W_enc, W_dec=W_dec, b_enc=-theta / 2, threshold=theta, b_dec=b_dec)
        tmp.rename(files[0])
        return
    import torch
    from safetensors.torch import save_file

    d, F = W_enc.shape
    th = float(np.median(theta))  # Llama Scope: one scalar threshold per SAE
    hp = {"d_model": d, "d_sae": F, "act_fn": "jumprelu", "jump_relu_threshold": th,
          "dataset_average_activation_norm": {"in": d**0.5, "out": d**0.5},
          "hook_point_in": f"blocks.{layer}.hook_resid_post",
          "hook_point_out": f"blocks.{layer}.hook_resid_post"}  # fmt: skip
    files[0].write_text(json.dumps(hp, indent=1))
    state = {
        "encoder.weight": torch.from_numpy(np.ascontiguousarray(W_enc.T)),  # (F, d)
        "encoder.bias": torch.full((F,), -th / 2),
        "decoder.weight": torch.from_numpy(np.ascontiguousarray(W_dec.T)),  # (d, F)
        "decoder.bias": torch.from_numpy(b_dec),
    }
    tmp = files[1].with_suffix(".tmp")
    save_file(state, str(tmp))
    tmp.rename(files[1])


def build_saes(
    root: Path, preset: Preset, layers: list[int], width: int, d_model: int | None = None
) -> Path:
    """The preset's SAEs of `layers` at `width` (d_model: the preset's) in its published layout
    (module docstring)."""
    snap = snapshot(root, preset.sae_repo)
    ids = sae_ids(preset)
    if all(f.exists() for L in layers for f in sae_files(snap, preset, ids[L])):
        return snap
    d, rng = d_model or preset.config["hidden_size"], np.random.default_rng(0)
    W_dec = rng.standard_normal((width, d), dtype=np.float32)
    z = rng.standard_normal(width)  # each feature's log-θ score, carried to its partner
    noise = rng.standard_normal((d, width), dtype=np.float32)  # the encoder's, carried too
    for L in range(max(layers) + 1):  # every layer up to the last asked: drift is cumulative
        if L > 0:
            drift = rng.standard_normal((width, d), dtype=np.float32)
            hidden = rng.permutation(width)
            W_dec = W_dec[hidden] + (0.3 / np.sqrt(d)) * drift  # norm ≈ 0.3
            z = 0.9 * z[hidden] + np.sqrt(1 - 0.9**2) * rng.standard_normal(width)
            fresh = rng.standard_normal((d, width), dtype=np.float32)
            noise = 0.9 * noise[:, hidden] + np.float32(np.sqrt(1 - 0.9**2)) * fresh
            del fresh
            del drift
        W_dec /= np.linalg.norm(W_dec, axis=1, keepdims=True)
        if L not in layers or all(f.exists() for f in sae_files(snap, preset, ids[L])):
            continue
        median = 0.5 * (8.0 / 0.5) ** (L / 25)  # 0.5 at layer 0 -> 8 at layer 25
        theta = (median * np.exp(0.5 * z)).astype(np.float32)  # partners' θ: correlation 0.9
        W_enc = (W_dec.T + (0.75 / np.sqrt(d)) * noise) * 2.0  # + noise of norm ≈ 0.75
        b_dec = (0.01 * rng.standard_normal(d)).astype(np.float32)
        write_sae(snap, preset, ids[L], L, {"W_enc": W_enc, "W_dec": W_dec, "theta": theta,
                                             "b_dec": b_dec})  # fmt: skip
        del W_enc
    return snap


# 2: drift and encoder noise scaled by 1/√d_model, and θ carried to the partner (log θ
# correlation 0.9). Recipe 1 drew drift and noise with norm 0.3·√d and 0.1·√d (14.4 and 4.8 at
# d 2304) against unit rows and θ independently per layer: adjacent layers shared nothing and
# every row of a 16k pair fell into the solver's dense rest, a worst case no trained set shows.
SAE_RECIPE = 2


def check_root(root: Path, built: dict) -> None:
    """A root holds one preset at one width (and one model depth): refuse to mix them."""
    marker = root / "built.json"
    if marker.exists():
        old = {"sae_recipe": 1, **json.loads(marker.read_text())}  # roots from before the key
        diff = {k: (old.get(k), v) for k, v in built.items() if old.get(k, v) != v}
        if diff:
            raise SystemExit(
                f"{root} was built with {old}; this run asks {built} ({diff}). Pass another "
                "--root for another preset, width, --model-layers or --vocab-size (the SAE "
                "ids and the model's name are the same for all of them)."
            )
        return
    marker.write_text(json.dumps(built))


def mem_available_gb() -> float:
    """MemAvailable of /proc/meminfo, in GB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def memory_gb(pid: int) -> dict[str, float]:
    """VmHWM (peak resident set, memory-mapped file pages included) and RssAnon (resident
    anonymous memory now: what the process itself allocated) of a live process, in GB."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":")[0]
            if key in ("VmHWM", "RssAnon"):
                out[key] = int(line.split()[1]) / 2**20
    except OSError:
        pass
    return out


def gemm_gflops(m: int = 32, d: int = 2304) -> dict[str, float]:
    """GFLOP/s of an (m, d) @ (d, d) matmul in float32 and bfloat16 on this CPU: why the model
    runs in float32 here (a CPU without bf16 units runs bf16 GEMM as a slow loop)."""
    import torch

    out = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        x, w = torch.randn(m, d, dtype=dtype), torch.randn(d, d, dtype=dtype)
        x @ w  # warm up
        t0 = time.perf_counter()
        x @ w
        out[name] = round(2 * m * d * d / (time.perf_counter() - t0) / 1e9, 2)
    return out


def load_average() -> float:
    """The 1-minute load average (how busy the 2 cores were)."""
    return round(os.getloadavg()[0], 2)


def commit() -> str:
    """HEAD of this repository, with -dirty when tracked files differ from it."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def run_record(run_dir: Path | None) -> dict:
    """What the run folder says: the bound GEMM its match files report (Matching.info
    ["bound_gemm"]: fp32 or int8, as solver=auto chose it), if it wrote any."""
    if run_dir is None:
        return {}
    backends = set()
    for path in (run_dir / "matchings").glob("*.json"):
        try:
            info = json.loads(path.read_text()).get("info") or {}
        except (json.JSONDecodeError, AttributeError):
            continue  # an index file, not a match file
        if "bound_gemm" in info:
            backends.add(str(info["bound_gemm"]))
    return {"run_dir": str(run_dir), "bound_backend": sorted(backends) or None}


def cached_matchings(root: Path) -> int:
    """Complete entries of the run's matching cache (a match file's JSON is written last)."""
    return len(list((root / "saematch-cache" / "matchings").glob("*.json")))


def newest_run(root: Path, experiment: str, since: float) -> Path | None:
    """The run folder this experiment wrote (the newest under root/outputs/<experiment>)."""
    runs = [p for p in (root / "outputs" / experiment).glob("*") if p.stat().st_mtime >= since]
    return max(runs, key=lambda p: p.stat().st_mtime, default=None)


def saematch_command(experiment: str, args, preset: Preset) -> list[str]:
    """The `saematch` command line of one experiment of this rehearsal."""
    first, last = args.layers[0], args.layers[-1]
    return [
        str(Path(sys.executable).parent / "saematch"),
        f"experiment={experiment}", f"model={preset.model_cfg}", "model.device=cpu",
        f"model.dtype={args.model_dtype}", f"model.batch_size={args.n_examples}",
        f"saes={preset.saes_cfg}", f"saes.layers=[{first},{last}]", "data=stdlib",
        f"data.n_examples={args.n_examples}", f"data.seq_len={args.seq_len}", "logger=none",
        f"paths.output_root={args.root / 'outputs'}", *EXPERIMENTS[experiment], *args.overrides,
    ]  # fmt: skip


def run_one(experiment: str, args, preset: Preset) -> dict:
    """One `saematch` run under the memory guard: {experiment, status, seconds, peak_gb, ...}."""
    root = args.root
    cmd = ["nice", "-n", str(args.nice), *saematch_command(experiment, args, preset)]
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_HUB_CACHE=str(root / "hub"),
        SAEMATCH_CACHE=str(root / "saematch-cache"),
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    )
    log = root / f"{experiment}.log"
    load_start, started, n_cached = load_average(), time.time(), cached_matchings(root)
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0, peak, anon, status = time.perf_counter(), 0.0, 0.0, "ok"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root,
                                start_new_session=True)  # fmt: skip
        while proc.poll() is None:
            time.sleep(1.0)
            mem = memory_gb(proc.pid)
            peak, anon = max(peak, mem.get("VmHWM", 0.0)), max(anon, mem.get("RssAnon", 0.0))
            why = None
            # the guard reads anonymous memory: VmHWM also counts the pages of memory-mapped
            # weight files (safetensors), which the kernel can drop, and it never falls
            if anon > args.max_gb:
                why = f"stopped: anonymous memory {anon:.1f} GB > --max-gb {args.max_gb}"
            elif args.max_seconds and time.perf_counter() - t0 > args.max_seconds:
                why = f"stopped: --max-seconds {args.max_seconds:g} reached"
            elif mem_available_gb() < args.min_free_gb:
                why = f"stopped: machine has < {args.min_free_gb} GB available"
            if why:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
                status = why
                break
    seconds = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the run's, once it is reaped
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    if status == "ok" and proc.returncode != 0:
        status = f"failed (exit {proc.returncode}): see {log}"
    return {
        "experiment": experiment, "preset": args.preset,
        "layers": [args.layers[0], args.layers[-1]],
        "width": args.width, "d_model": preset.config["hidden_size"],
        "model_layers": args.model_config["num_hidden_layers"], "model_dtype": args.model_dtype,
        "vocab_size": args.model_config["vocab_size"],
        "n_examples": args.n_examples, "seq_len": args.seq_len, "status": status,
        "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "peak_gb": round(peak, 2),
        "peak_anon_gb": round(anon, 2),  # sampled each second: may miss a short spike
        "load_start": load_start,
        "load_end": load_average(), "nice": args.nice, "commit": args.commit,
        "sae_recipe": SAE_RECIPE, "gemm_gflops": args.gemm, "log": str(log),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "command": " ".join(cmd[4:]).replace(str(root), "<root>"), "script": args.script,
        **run_record(newest_run(root, experiment, started - 1)),
        "matchings_computed": cached_matchings(root) - n_cached,  # new cache entries
    }  # fmt: skip


def parse_layers(text: str) -> list[int]:
    a, _, b = text.partition("-")
    return list(range(int(a), int(b or a) + 1))


# -- docs/benchmarks.md ------------------------------------------------------------------------
def report(sources: list[Path], docs: Path = DOCS, data: Path = DOCS_DATA) -> str:
    """Merge the latest record of each (preset, width, layers, experiment) of `sources` into
    `data`, and write the marked section of `docs` from `data`; returns the section."""
    kept = {_key(r): r for r in (json.loads(data.read_text()) if data.exists() else [])}
    for src in sources:
        for r in json.loads(src.read_text()):
            kept[_key(r)] = r  # records are appended in time order: the last one wins
    rows = sorted(
        kept.values(),
        key=lambda r: (
            r["preset"],
            -r["width"],
            r["layers"],
            list(EXPERIMENTS).index(r["experiment"]),
        ),
    )
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(json.dumps(rows, indent=1) + "\n")
    section = render(rows)
    text = docs.read_text()
    if BEGIN in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    docs.write_text(text)
    return section


def _anon(r: dict) -> str:
    return f"anon {r['peak_anon_gb']:.2f}" if "peak_anon_gb" in r else "anon ?"


def _n(x) -> str:
    """A number with thousands separators, rounded to an integer; '?' where not recorded."""
    return "?" if x is None else f"{x:,.0f}"


def _key(r: dict) -> tuple:
    return (r["preset"], r["width"], tuple(r["layers"]), r["experiment"])


INTRO = (
    "Generated by `python scripts/rehearse_paper.py --report` from the records in "
    "[data/rehearsal.json](data/rehearsal.json); do not edit by hand. Architecture and widths "
    "are the published ones; every weight is random (the script's docstring says how the SAEs "
    "are drawn: unit-norm decoder rows, a hidden permutation plus drift between layers, "
    "log-normal θ rising with depth; those scales are assumptions, not the published values). "
    "The model runs in float32 on CPU: on a CPU without bf16 GEMM units a bf16 matmul falls "
    "back to a slow loop (the GEMM rates the script measured are in the last column). Time = "
    "wall clock; CPU = user + system seconds of the run, the steadier number on a shared "
    "machine. Peak = the process's VmHWM, memory-mapped weight files included (anonymous "
    "memory alone, sampled each second, in brackets: what --max-gb guards). Load = the 1-minute "
    "load average at start → end (2 cores, shared). The experiments share one matching cache: "
    '"matchings computed" are the exact LAPs a run solved (new cache entries); the others '
    "it read from the cache. SAE recipe (`SAE_RECIPE` in the script; 1 where a record predates "
    "the field): 1 drew the drift between layers and the encoder's noise √d_model too large, so "
    "adjacent layers shared nothing and every row of a pair fell into the solver's dense rest, "
    "a worst case for the matching's time that no trained set shows; 2 scales both by 1/√d "
    "and carries θ to the partner."
)


def render(rows: list[dict]) -> str:
    """The docs section: one table of every recorded experiment, then each run's command."""
    lines = [
        BEGIN,
        "## The paper's setup rehearsed offline, at full dimensions (`scripts/rehearse_paper.py`)",
        "",
        *textwrap.wrap(INTRO, 96),
        "",
        "| model | blocks, vocab | SAE layers | width | experiment | status | time (CPU) | peak |"
        " load | bound backend | matchings computed | SAE recipe | commit, date |"
        " GEMM GFLOP/s fp32 / bf16 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        backend = ", ".join(r.get("bound_backend") or []) or "not reported"
        m = r.get("matchings_computed", "?")
        g = r.get("gemm_gflops") or {}
        gemm = " / ".join(f"{g[k]:g}" for k in ("float32", "bfloat16") if k in g) or "?"
        lines.append(
            f"| {r['preset']} | {r['model_layers']}, {_n(r.get('vocab_size'))} | "
            f"{r['layers'][0]}–{r['layers'][1]} | "
            f"{r['width']:,} × {r['d_model']:,} | {r['experiment']} | {r['status']} | "
            f"{r['seconds']:,.0f} s ({_n(r.get('cpu_seconds'))} s) | "
            f"{r['peak_gb']:.2f} GB ({_anon(r)}) | {r['load_start']} → "
            f"{r['load_end']} | {backend} | {m} | {r.get('sae_recipe', 1)} | {r['commit']}, "
            f"{r['started']} | {gemm} |"
        )
    for name, preset in PRESETS.items():  # say so where the full set has not run yet
        n = preset.model_layers or preset.config["num_hidden_layers"]
        full = [r for r in rows if r["preset"] == name and r["layers"] == [0, n - 1]
                and r["width"] == preset.width and r["status"] == "ok"]  # fmt: skip
        done = sorted({r["experiment"] for r in full}, key=list(EXPERIMENTS).index)
        fewer = [r for r in rows if r["preset"] == name and r["width"] == preset.width
                 and r["status"] == "ok" and r["layers"] == [0, r["model_layers"] - 1]
                 and r["model_layers"] < n]  # fmt: skip
        small = sorted({r["experiment"] for r in fewer}, key=list(EXPERIMENTS).index)
        if len(done) < len(EXPERIMENTS) and small:
            k = min(r["model_layers"] for r in fewer)
            lines += [
                "",
                f"**{name}, at the published width {preset.width:,} with fewer blocks** "
                f"(every SAE layer of a {k}-block build): {', '.join(small)} recorded complete.",
            ]
        if len(done) < len(EXPERIMENTS):
            what = ", ".join(done) or "no experiment"  # the block count: --model-layers
            head = (
                f"**{name}, SAE layers 0–{n - 1} of its {n}-block build, width {preset.width:,}:**"
            )
            lines += ["", f"{head} {what} recorded complete so far."]
    scripts = dict.fromkeys(r.get("script", "?") for r in rows)  # in order, once each
    lines += ["", "Made by:", ""] + [f"    {c}" for c in scripts]
    lines += ["", "which ran (HF_HUB_OFFLINE=1, HF_HUB_CACHE=<root>/hub):", ""]
    lines += [f"    saematch {r['command']}" for r in rows]
    lines.append(END)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    """Build what is missing, run each experiment, print and save time and peak memory."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="gemma2_2b")
    p.add_argument(
        "--root",
        type=Path,
        default=None,
        help="default /work/cache/rehearsal (gemma2_2b), /work/cache/rehearsal-<preset>",
    )
    p.add_argument("--layers", type=parse_layers, default=None, help="SAE layers, e.g. 0-3")
    p.add_argument("--width", type=int, default=None, help="SAE width; default the published")
    p.add_argument(
        "--model-layers",
        type=int,
        default=None,
        help="blocks of the model; default the published (llama31_8b: 4 of 32)",
    )
    p.add_argument(
        "--vocab-size",
        type=int,
        default=None,
        help="development only: e.g. 4096 (the stand-in tokenizer's) for a model "
        "that fits 2 GB; default the published",
    )
    p.add_argument(
        "--model-dtype",
        default="float32",
        help="float32: this CPU's bf16 GEMM is ~100x slower (no AVX-512 BF16)",
    )
    p.add_argument("--experiments", default=",".join(EXPERIMENTS))
    p.add_argument("--n-examples", type=int, default=2)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument(
        "--max-gb",
        type=float,
        default=12.0,
        help="stop a run past this much "
        "anonymous memory (mapped weight files are not counted: the kernel can drop them)",
    )
    p.add_argument("--min-free-gb", type=float, default=3.0)
    p.add_argument("--nice", type=int, default=19)
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="stop each run after this long (its matchings so far stay cached)",
    )
    p.add_argument("--build-only", action="store_true")
    p.add_argument(
        "--refresh",
        action="store_true",
        help="re-read what --root's records take from their run folders (bound GEMM)",
    )
    p.add_argument(
        "--report",
        nargs="*",
        type=Path,
        default=None,
        metavar="JSON",
        help="write docs/benchmarks.md from these rehearsal.json (default --root's)",
    )
    p.add_argument(
        "overrides", nargs="*", help="more saematch overrides, e.g. matching.solver=lapjv"
    )
    args = p.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    args.script = " ".join(["python scripts/rehearse_paper.py", *given])
    preset = PRESETS[args.preset]
    if args.root is None:
        name = "rehearsal" if args.preset == "gemma2_2b" else f"rehearsal-{args.preset}"
        args.root = Path("/work/cache") / name
    if args.refresh:
        out = args.root / "rehearsal.json"
        rows = [r | run_record(Path(r["run_dir"])) for r in json.loads(out.read_text())]
        out.write_text(json.dumps(rows, indent=2))
        return rows
    if args.report is not None:
        print(report(args.report or [args.root / "rehearsal.json"]))
        return []
    args.width = args.width or preset.width
    vocab = {"vocab_size": args.vocab_size} if args.vocab_size else {}
    args.model_config = model_config(preset, args.model_layers or preset.model_layers, **vocab)
    n_blocks = args.model_config["num_hidden_layers"]
    args.layers = args.layers or list(range(n_blocks))
    if args.layers[-1] >= n_blocks:
        p.error(f"--layers {args.layers[0]}-{args.layers[-1]}: the model has {n_blocks} blocks")
    args.commit, args.gemm = commit(), gemm_gflops()
    args.root.mkdir(parents=True, exist_ok=True)
    vocab = args.model_config["vocab_size"]
    built = {"preset": args.preset, "width": args.width, "model_layers": n_blocks, "vocab": vocab,
             "sae_recipe": SAE_RECIPE}  # fmt: skip
    check_root(args.root, built)
    names = args.experiments.split(",")
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        p.error(f"--experiments: {unknown} unknown; choose from {list(EXPERIMENTS)}")
    if args.build_only or any(n in NEEDS_MODEL for n in names):
        build_model(args.root, preset, args.model_config)
    build_saes(args.root, preset, args.layers, args.width, args.model_config["hidden_size"])
    if args.build_only:
        return []
    rows, out = [], args.root / "rehearsal.json"
    for name in names:
        rows.append(run_one(name, args, preset))
        r = rows[-1]
        took = f"{r['seconds']:7.1f} s  peak {r['peak_gb']:5.2f} GB  load {r['load_end']}"
        print(f"{name:14s} layers {r['layers']}  {took}  {r['status']}", flush=True)
        old = json.loads(out.read_text()) if out.exists() else []
        out.write_text(json.dumps([*old, r], indent=2))  # after each: a stopped run keeps it
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
