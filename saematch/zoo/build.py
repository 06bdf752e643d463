"""Build the zoo end to end: tokenizer → LM → activations → SAEs → descriptions → manifest."""

from __future__ import annotations

import json
import platform
import shutil
import time
from pathlib import Path

import tokenizers
import torch
import transformers
from torch import Tensor
from transformers import Gemma2ForCausalLM, PreTrainedTokenizerFast

from saematch.data.stdlib import stdlib_texts
from saematch.sources import save_sae
from saematch.zoo.activations import resid_post
from saematch.zoo.agreement import seed_agreement
from saematch.zoo.config import ZooConfig
from saematch.zoo.describe import describe_features, token_strings_of
from saematch.zoo.manifest import read_manifest, write_manifest
from saematch.zoo.progress import Progress
from saematch.zoo.threads import pick_threads, torch_threads
from saematch.zoo.tokenizer import chunk_with_bos, token_stream, train_tokenizer
from saematch.zoo.train_lm import (
    LM_VERSION,
    heldout_ce,
    make_model,
    train_lm,
    unigram_entropy,
)
from saematch.zoo.train_sae import TRAINER_VERSION, SAEBatchResult, train_saes

STAGE_WEIGHTS = {"tokenizer": 0.05, "lm": 0.45, "activations": 0.05, "saes": 0.35, "describe": 0.1}
DESCRIPTIONS = "descriptions.json"


def sae_dir(root: Path, layer: int, sparsity: str) -> Path:
    """Folder of one SAE inside a zoo: saes/<sparsity>/layer_<l>/."""
    return root / "saes" / sparsity / f"layer_{layer}"


def second_seed_dir(root: Path, layer: int, sparsity: str) -> Path:
    """Folder of the second-seed SAE of one layer: saes_seed1/<sparsity>/layer_<l>/."""
    return root / "saes_seed1" / sparsity / f"layer_{layer}"


def _pick(n: int, k: int, seed: int) -> torch.Tensor:
    """k distinct indices of range(n) in a seeded order."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k]


LM_FILES = "model/"  # tokenizer + LM: the first two stages; everything else derives from them
# Bump when a change to the stages after the LM (activations, descriptions, agreement) changes
# their files; the trainer and LM carry their own versions (TRAINER_VERSION, LM_VERSION).
BUILD_VERSION = 1


def code_version() -> dict[str, int]:
    """The versions of the code that builds a zoo; part of the cache key (manifest)."""
    return {"lm": LM_VERSION, "saes": TRAINER_VERSION, "build": BUILD_VERSION}


def build_zoo(
    cfg: ZooConfig, seed: int, out: Path, progress: Progress, reuse: Path | None = None
) -> dict:
    """Build every artifact of the zoo into the empty folder `out`; returns the manifest.

    `reuse`: an existing zoo of the same (cfg, seed) whose model/ folder (tokenizer and LM) is
    intact; those two stages are then read from it instead of trained again, and only the
    activations, SAEs and descriptions are rebuilt (the result is the same files: every stage
    is deterministic). Torch threads are chosen per stage (saematch.zoo.threads).
    """
    with torch_threads(1):
        return _build(cfg, seed, Path(out), progress, reuse)


def _train_lm(cfg, seed, tok, rows, held_rows, stream, model_dir, progress) -> tuple:
    """Train the LM on rows, save it into model_dir; returns (model, LM metrics)."""
    torch.manual_seed(seed)
    model = make_model(cfg, tok.pad_token_id, tok.eos_token_id, tok.bos_token_id)
    losses = train_lm(model, rows, cfg, seed, progress)
    lm_metrics = {
        "heldout_ce": heldout_ce(
            model, held_rows[_pick(len(held_rows), cfg.lm_eval_rows, seed + 1)]
        ),
        "unigram_entropy": unigram_entropy(stream, cfg.vocab_size),
        "train_loss_first": losses[0],
        "train_loss_last": sum(losses[-10:]) / len(losses[-10:]),
        "n_params": sum(p.numel() for p in model.parameters()),
        "train_tokens": cfg.lm_steps * cfg.lm_batch * cfg.seq_len,
    }
    lm_metrics["ce_over_entropy"] = lm_metrics["heldout_ce"] / lm_metrics["unigram_entropy"]
    model.save_pretrained(model_dir)
    return model, lm_metrics


def _reused_lm(reuse: Path, out: Path) -> tuple:
    """Tokenizer, LM and LM metrics of an intact zoo, with its model/ copied into `out`."""
    shutil.copytree(reuse / "model", out / "model")
    tok = PreTrainedTokenizerFast.from_pretrained(out / "model")
    model = Gemma2ForCausalLM.from_pretrained(out / "model", attn_implementation="eager")
    return tok, model, read_manifest(reuse)["metrics"]["lm"]


def corpus(cfg: ZooConfig) -> tuple[list[str], list[str]]:
    """Training and held-out documents of the zoo (cfg.corpus_docs: an evenly spaced subset)."""
    texts, held = stdlib_texts("code"), stdlib_texts("code", heldout=True)
    if cfg.corpus_docs:
        texts = texts[:: max(1, len(texts) // cfg.corpus_docs)][: cfg.corpus_docs]
        held = held[: max(4, cfg.corpus_docs // 8)]
    return texts, held


def pick_sae_rows(cfg: ZooConfig, seed: int, rows: Tensor, held_rows: Tensor) -> tuple:
    """The rows (R, T) whose activations train (seed + 2) and score (seed + 3) the SAEs."""
    return (
        rows[_pick(len(rows), cfg.sae_train_rows, seed + 2)],
        held_rows[_pick(len(held_rows), cfg.sae_eval_rows, seed + 3)],
    )


def train_level_saes(cfg: ZooConfig, acts, held_acts, targets: list[int], seed: int, progress):
    """train_saes with the zoo's schedule: one SAE per (layer, target L0).

    Layers batch together by step count (cfg.sae_steps, or cfg.sae_layer_steps[layer]).
    """
    steps_of = [cfg.sae_layer_steps.get(layer, cfg.sae_steps) for layer in range(len(acts))]
    saes, metrics = [None] * len(acts), [None] * len(acts)
    for steps in sorted(set(steps_of)):
        group = [layer for layer, s in enumerate(steps_of) if s == steps]
        whole = len(group) == len(acts)  # one schedule for every layer: no copy of acts
        a, h = (acts, held_acts) if whole else (acts[group], held_acts[group])
        res = train_saes(a, h, targets, cfg.width, steps=steps,
                         batch=cfg.sae_batch, lr=cfg.sae_lr, bandwidth=cfg.sae_bandwidth,
                         seed=seed, progress=progress)  # fmt: skip
        for k, layer in enumerate(group):
            saes[layer], metrics[layer] = res.saes[k], res.metrics[k]
    return SAEBatchResult(saes, metrics)


def save_level(cfg, seed, level, saes, metrics, folder_of, acts, sae_rows, strings) -> dict:
    """Save one sparsity level's SAEs (one per layer) with their descriptions into
    folder_of(layer); returns {layer: held-out metrics}."""
    n_desc = cfg.describe_rows * (cfg.seq_len - 1)
    out = {}
    for layer, (sae, m) in enumerate(zip(saes, metrics, strict=True)):
        sae.name = f"zoo-{cfg.size}-seed{seed}/{level}/layer_{layer}"
        sae.meta = {"layer": layer, "site": "resid_post", "sparsity": level, "zoo": cfg.size}
        folder = save_sae(sae, folder_of(layer))
        desc = describe_features(sae, acts[layer, :n_desc], sae_rows[: cfg.describe_rows], strings)
        (folder / DESCRIPTIONS).write_text(json.dumps({str(k): v for k, v in desc.items()}))
        out[str(layer)] = {k: round(v, 6) for k, v in m.items()}
    return out


def _use_threads(cfg: ZooConfig, used: dict[str, int], stage: str) -> None:
    # The 1-minute load average still holds the previous stage's own threads: don't count them.
    n = pick_threads(cfg.max_threads, own_busy=torch.get_num_threads())
    torch.set_num_threads(n)
    used[stage] = n


def _build(
    cfg: ZooConfig, seed: int, out: Path, progress: Progress, reuse: Path | None = None
) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    timings: dict[str, float] = {}
    threads: dict[str, int] = {}

    cpu: dict[str, float] = {}

    def mark(name: str) -> None:  # wall and CPU seconds of the stage that just ended
        timings[name] = round(time.perf_counter() - t0 - sum(timings.values()), 2)
        cpu[name] = round(time.process_time() - c0 - sum(cpu.values()), 2)

    progress.stage("tokenizer")
    texts, held = corpus(cfg)
    model_dir = out / "model"
    if reuse is not None:
        progress.log(f"reusing the tokenizer and LM of {reuse.name}: only later stages rebuild")
        tok, model, lm_metrics = _reused_lm(reuse, out)
    else:
        tok = train_tokenizer(texts[: cfg.tokenizer_docs or None], cfg.vocab_size)
        tok.save_pretrained(model_dir)
    stream, held_stream = token_stream(tok, texts), token_stream(tok, held)
    rows = chunk_with_bos(stream, cfg.seq_len, tok.bos_token_id)  # (R, T)
    held_rows = chunk_with_bos(held_stream, cfg.seq_len, tok.bos_token_id)
    mark("tokenizer")

    progress.stage("lm")
    _use_threads(cfg, threads, "lm")
    if reuse is None:
        model, lm_metrics = _train_lm(cfg, seed, tok, rows, held_rows, stream, model_dir, progress)
    mark("lm")

    progress.stage("activations")
    _use_threads(cfg, threads, "activations")
    sae_rows, eval_rows = pick_sae_rows(cfg, seed, rows, held_rows)
    acts, held_acts = resid_post(model, sae_rows), resid_post(model, eval_rows)  # (L, N, d)
    mark("activations")

    progress.stage("saes")
    _use_threads(cfg, threads, "saes")
    # the second seed is one more SAE in the same batched run: its init differs, all else equal
    built = cfg.built_l0_targets
    targets = list(built) + [cfg.default_l0] * cfg.second_seed
    result = train_level_saes(cfg, acts, held_acts, targets, seed, progress)
    mark("saes")

    progress.stage("describe")
    _use_threads(cfg, threads, "describe")
    strings = token_strings_of(tok)
    sae_metrics: dict[str, dict[str, dict]] = {}
    for s, level in enumerate(f"l0_{k}" for k in built):
        sae_metrics[level] = save_level(
            cfg, seed, level, [row[s] for row in result.saes], [row[s] for row in result.metrics],
            lambda layer, lv=level: sae_dir(out, layer, lv), acts, sae_rows, strings,
        )  # fmt: skip
    agreement: dict[str, dict] = {}
    if cfg.second_seed:
        level, s0 = cfg.default_sparsity, list(built).index(cfg.default_l0)
        for layer in range(cfg.n_layers):
            a, b = result.saes[layer][s0], result.saes[layer][len(built)]
            b.name = f"zoo-{cfg.size}-seed{seed}/{level}/layer_{layer}/second_seed"
            b.meta = {"layer": layer, "site": "resid_post", "sparsity": level, "seed_index": 1}
            save_sae(b, second_seed_dir(out, layer, level))
            agreement[str(layer)] = seed_agreement(a, b, held_acts[layer]).to_dict()
            g = agreement[str(layer)]
            progress.log(
                f"layer {layer}: same-layer agreement {g['agreement']:.2f} (mean cos "
                f"{g['mean_cos']:.2f}), transfer EV {g['transfer_ev']:.2f} vs own {g['ev_a']:.2f}"
            )
    mark("describe")

    timings["total_wall_s"] = round(time.perf_counter() - t0, 2)
    timings["total_cpu_s"] = round(time.process_time() - c0, 2)
    timings["cpu_s"] = cpu
    timings["threads"] = threads
    manifest = {
        "size": cfg.size,
        "seed": seed,
        "n_layers": cfg.n_layers,
        "d_model": cfg.d_model,
        "width": cfg.width,
        "vocab_size": cfg.vocab_size,
        "sparsities": cfg.sparsities,
        "built_sparsities": [f"l0_{k}" for k in built],  # the rest: on first use (levels.py)
        "default_sparsity": cfg.default_sparsity,
        "site": "resid_post",
        "config": cfg.to_dict(),
        "code_version": code_version(),
        "metrics": {"lm": lm_metrics, "saes": sae_metrics, "seed_agreement": agreement},
        "timings": timings,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "python": platform.python_version(),
        },
    }
    progress.log(f"built in {timings['total_wall_s']:.0f}s (cpu {timings['total_cpu_s']:.0f}s)")
    return write_manifest(out, manifest)
