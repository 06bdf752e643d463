"""Sparsity levels of the zoo trained on first use (ZooConfig.eager_sparsities = False).

A zoo whose build trains only its default level (the default zoo: every SAE takes thousands of
steps to converge) lists the other levels in `manifest["sparsities"]`; the first request for one
trains its SAEs with the zoo's own schedule on the same activations the build used and saves
them, with descriptions, beside the zoo:

    <cache>/zoo/<size>-seed<seed>-<level>/layer_<l>/ (sae.safetensors, sae.json,
    descriptions.json) and manifest.json (metrics, the zoo manifest's sha256, code version)

Built in a temporary sibling under a file lock and swapped into place, as the zoo is; a rebuilt
zoo (another manifest) or other trainer code invalidates it.
"""

from __future__ import annotations

import time
from pathlib import Path

from transformers import Gemma2ForCausalLM, PreTrainedTokenizerFast

from saematch.atomic import atomic_build_dir
from saematch.locking import cache_lock
from saematch.zoo.activations import resid_post
from saematch.zoo.build import code_version, corpus, pick_sae_rows, save_level, train_level_saes
from saematch.zoo.config import get_config
from saematch.zoo.describe import token_strings_of
from saematch.zoo.manifest import MANIFEST, read_manifest, sha256_file, verify, write_manifest
from saematch.zoo.progress import Progress
from saematch.zoo.threads import pick_threads, torch_threads
from saematch.zoo.tokenizer import chunk_with_bos, token_stream


def level_dir(zoo, level: str) -> Path:
    """Where a level trained on first use lives: the sibling folder `<zoo>-<level>`."""
    return zoo.root.parent / f"{zoo.root.name}-{level}"


def _expect(zoo, level: str) -> dict:
    return {
        "kind": "zoo-level",
        "level": level,
        "zoo_manifest": sha256_file(zoo.root / MANIFEST),
        "code_version": code_version(),
    }


def _build(zoo, level: str, out: Path, log: Progress) -> dict:
    t0 = time.perf_counter()
    cfg = get_config(zoo.manifest["size"])
    seed = int(zoo.manifest["seed"])
    log.stage("activations")
    tok = PreTrainedTokenizerFast.from_pretrained(zoo.model_dir)
    model = Gemma2ForCausalLM.from_pretrained(zoo.model_dir, attn_implementation="eager")
    texts, held = corpus(cfg)
    rows = chunk_with_bos(token_stream(tok, texts), cfg.seq_len, tok.bos_token_id)
    held_rows = chunk_with_bos(token_stream(tok, held), cfg.seq_len, tok.bos_token_id)
    sae_rows, eval_rows = pick_sae_rows(cfg, seed, rows, held_rows)  # the build's rows
    acts, held_acts = resid_post(model, sae_rows), resid_post(model, eval_rows)  # (L, N, d)
    log.stage("saes")
    l0 = int(level.removeprefix("l0_"))
    res = train_level_saes(cfg, acts, held_acts, [l0], seed, log)
    log.stage("describe")
    metrics = save_level(
        cfg, seed, level, [r[0] for r in res.saes], [m[0] for m in res.metrics],
        lambda layer: out / f"layer_{layer}", acts, sae_rows, token_strings_of(tok),
    )  # fmt: skip
    wall = round(time.perf_counter() - t0, 2)
    log.log(f"sparsity level {level} built in {wall:.0f}s")
    return write_manifest(out, {**_expect(zoo, level), "metrics": metrics, "wall_s": wall})


def ensure_level(zoo, level: str, progress: bool = True) -> Path:
    """The folder of `level`'s SAEs: the zoo's own saes/<level>/ when its build trained it,
    else the sibling folder, trained once on first use. ValueError for an unknown level."""
    if level not in zoo.sparsities:
        raise ValueError(f"unknown sparsity {level!r}; this zoo has {zoo.sparsities}")
    if level in zoo.built_sparsities:
        return zoo.root / "saes" / level
    root = level_dir(zoo, level)
    expect = _expect(zoo, level)
    if not verify(root, expect):
        return root
    with cache_lock(str(root) + ".lock", "a zoo sparsity level"):
        problems = verify(root, expect)
        if not problems:  # built by another process while we waited
            return root
        log = Progress(progress, {"activations": 0.05, "saes": 0.85, "describe": 0.1})
        log.log(f"training the zoo's {level} SAEs on first use ({root.name})")
        n = pick_threads(get_config(zoo.manifest["size"]).max_threads)
        with torch_threads(n):
            atomic_build_dir(root, lambda tmp: _build(zoo, level, tmp, log))
    return root


def level_metrics(zoo, level: str, progress: bool = True) -> dict[str, dict]:
    """{layer: held-out metrics (l0, explained_variance, dead_frac, l0_coeff)} of one level."""
    if level in zoo.built_sparsities:
        return zoo.manifest["metrics"]["saes"][level]
    return read_manifest(ensure_level(zoo, level, progress))["metrics"]
