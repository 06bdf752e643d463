"""Module-site SAEs of the zoo (attention and MLP outputs), built on first use beside the zoo.

The zoo's LM has the Gemma 2 architecture, so its module SAEs mirror Gemma Scope's: `attn_z`
(concatenated head outputs before o_proj, like Gemma Scope `att`) and `mlp_out` (the MLP output
after the post-MLP RMSNorm, like Gemma Scope `mlp`); see saematch.lm.sites. One SAE per (site,
layer) at the zoo's default target L0, trained with the zoo's own trainer and schedule
(`train_saes`) on the zoo's training corpus.

Layout: <cache>/zoo/<size>-seed<seed>-modules/<site>/layer_<l>/ (sae.safetensors, sae.json) and
manifest.json, which records the sha256 of the zoo's manifest: a rebuilt zoo invalidates them.
Built in a temporary sibling under a file lock and renamed into place, as the zoo is.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from saematch.atomic import atomic_build_dir
from saematch.data.stdlib import stdlib_texts
from saematch.lm.sites import capture_sites, check_site
from saematch.locking import cache_lock
from saematch.sae import JumpReLUSAE
from saematch.sources import load_sae, save_sae
from saematch.zoo.config import get_config
from saematch.zoo.manifest import MANIFEST, sha256_file, verify, write_manifest
from saematch.zoo.progress import Progress
from saematch.zoo.threads import pick_threads, torch_threads
from saematch.zoo.tokenizer import chunk_with_bos, token_stream
from saematch.zoo.train_sae import train_saes

MODULE_SITES = ("attn_z", "mlp_out")
ROW_SEED_OFFSET = 12  # the zoo uses seed+2 / seed+3 for its own row picks


def modules_dir(zoo) -> Path:
    """Where the module SAEs of `zoo` live: a sibling folder `<zoo>-modules`."""
    return zoo.root.parent / f"{zoo.root.name}-modules"


def _rows(zoo, n: int, heldout: bool, seed: int) -> Tensor:
    """n seeded rows (n, T) of BOS + T−1 tokens of the zoo's corpus (training or held-out part)."""
    from transformers import AutoTokenizer

    cfg = get_config(zoo.manifest["size"])
    tok = AutoTokenizer.from_pretrained(str(zoo.model_dir))
    texts = stdlib_texts("code", heldout=heldout)
    if cfg.corpus_docs:  # the same document subset the zoo's LM saw
        texts = texts[:: max(1, len(texts) // cfg.corpus_docs)][: cfg.corpus_docs] if not heldout \
            else texts[: max(4, cfg.corpus_docs // 8)]  # fmt: skip
    rows = chunk_with_bos(token_stream(tok, texts), cfg.seq_len, tok.bos_token_id)  # (R, T)
    pick = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:n]
    return rows[pick]


@torch.no_grad()
def site_acts(model, rows: Tensor, sites: tuple[str, ...], batch: int = 32) -> dict[str, Tensor]:
    """{site: (n_layers, R·(T−1), d_site)} activations of the non-BOS tokens of rows (R, T)."""
    layers = model.model.layers
    want = [(s, layer) for s in sites for layer in range(len(layers))]
    model.eval()
    with capture_sites(layers, want) as got:
        for i in range(0, len(rows), batch):
            model.model(input_ids=rows[i : i + batch])
    out = {}
    for s in sites:
        per_layer = []
        for layer in range(len(layers)):
            h = torch.cat(got[(s, layer)])  # (R, T, d)
            per_layer.append(h[:, 1:].reshape(-1, h.shape[-1]).float())
        out[s] = torch.stack(per_layer)
    return out


def _build(zoo, sites: tuple[str, ...], out: Path, log: Progress) -> dict:
    from transformers import AutoModelForCausalLM

    cfg = get_config(zoo.manifest["size"])
    seed = int(zoo.manifest["seed"])
    model = AutoModelForCausalLM.from_pretrained(str(zoo.model_dir), attn_implementation="eager")
    rows = _rows(zoo, cfg.sae_train_rows, False, seed + ROW_SEED_OFFSET)
    held = _rows(zoo, cfg.sae_eval_rows, True, seed + ROW_SEED_OFFSET + 1)
    log.stage("activations")
    acts, held_acts = site_acts(model, rows, sites), site_acts(model, held, sites)
    metrics: dict[str, dict] = {}
    for k, site in enumerate(sites):
        log.stage(f"saes {site}")
        res = train_saes(acts[site], held_acts[site], [cfg.default_l0], cfg.width,
                         steps=cfg.sae_steps, batch=cfg.sae_batch, lr=cfg.sae_lr,
                         bandwidth=cfg.sae_bandwidth, seed=seed + 100 * (k + 1),
                         progress=log)  # fmt: skip
        metrics[site] = {}
        for layer, (row_s, row_m) in enumerate(zip(res.saes, res.metrics, strict=True)):
            sae = row_s[0]
            sae.name = f"zoo-{cfg.size}-seed{seed}/{site}/layer_{layer}"
            sae.meta = {"layer": layer, "site": site, "sparsity": cfg.default_sparsity,
                        "zoo": cfg.size}  # fmt: skip
            save_sae(sae, out / site / f"layer_{layer}")
            metrics[site][str(layer)] = {k2: round(v, 6) for k2, v in row_m[0].items()}
    manifest = {"kind": "zoo-module-saes", "sites": list(sites), "zoo_manifest": _zoo_sha(zoo),
                "n_layers": zoo.n_layers, "width": cfg.width, "metrics": metrics}  # fmt: skip
    return write_manifest(out, manifest)


def _zoo_sha(zoo) -> str:
    return sha256_file(zoo.root / MANIFEST)


def ensure_module_saes(zoo, sites=MODULE_SITES, progress: bool = True) -> Path:
    """Build (once) and return the folder of the zoo's module SAEs for `sites`."""
    sites = tuple(check_site(s) for s in sites)
    bad = [s for s in sites if s not in MODULE_SITES]
    if bad:
        raise ValueError(f"zoo module SAEs exist for {MODULE_SITES}, not {bad}")
    root = modules_dir(zoo)
    expect = {"sites": list(MODULE_SITES), "zoo_manifest": _zoo_sha(zoo)}
    if not verify(root, expect):
        return root
    with cache_lock(str(root) + ".lock", "the zoo's module SAEs"):
        problems = verify(root, expect)
        if not problems:
            return root
        log = Progress(progress, {"activations": 0.1, **{f"saes {s}": 0.45 for s in MODULE_SITES}})
        if root.exists():
            log.log(f"rebuilding {root}: {'; '.join(problems[:3])}")
        n = pick_threads(get_config(zoo.manifest["size"]).max_threads)
        with torch_threads(n):
            atomic_build_dir(root, lambda tmp: _build(zoo, MODULE_SITES, tmp, log))
    return root


def load_module_sae(zoo, site: str, layer: int) -> JumpReLUSAE:
    """The zoo's SAE on `site` of block `layer` (built on first use)."""
    root = ensure_module_saes(zoo)
    if not 0 <= layer < zoo.n_layers:
        raise ValueError(f"layer {layer} out of range; the zoo has layers 0..{zoo.n_layers - 1}")
    return load_sae(root / check_site(site) / f"layer_{layer}")
