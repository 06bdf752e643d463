"""Time the layer-pruning sweep against a naive loop of full forwards with replacement hooks.

A random tiny Gemma 2 and random SAEs/perms; both compute ΔL and EV for every pair and all
four methods, and must agree. Target: sweep time ≤ 0.6 × naive time.

    python scripts/bench_pruning.py [--layers 8 --d-model 128 --seq 128 --n 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from transformers import Gemma2Config, Gemma2ForCausalLM

from saematch.lm import LanguageModel, default_metric_mask
from saematch.metrics import explained_variance
from saematch.pruning import baseline_replacements, layer_pruning, sae_match_replacement
from saematch.sae import JumpReLUSAE


def random_sae(d: int, width: int, g: torch.Generator) -> JumpReLUSAE:
    return JumpReLUSAE(
        W_enc=torch.randn(d, width, generator=g) / d**0.5,
        b_enc=torch.randn(width, generator=g) * 0.1,
        W_dec=torch.randn(width, d, generator=g) / width**0.5,
        b_dec=torch.randn(d, generator=g) * 0.1,
        threshold=0.05 + torch.rand(width, generator=g),
    )


def naive(lm, saes, perms, ids, mask) -> dict:
    """One full forward per (pair, method): hook on block t reads x_t, hook on t+1 replaces."""
    mask = mask.clone()
    mask[:, 0] = False
    n = ids.shape[0]
    clean = lm.token_losses(ids, batch_size=n)[mask].double().mean().item()
    reps = {"sae_match": sae_match_replacement(saes, perms), **baseline_replacements(saes)}
    out = {}
    for t in range(lm.n_layers - 1):
        for name, fn in reps.items():
            seen = {}

            def read(mod, args, o, seen=seen, t=t):
                seen[t] = o

            def replace(mod, args, o, seen=seen, t=t, fn=fn):
                seen[t + 1] = o
                resid = {t: seen[t], t + 1: o}  # fn indexes resid by block
                seen["hat"] = fn(t, resid)
                return seen["hat"]

            hs = [lm.layers[t].register_forward_hook(read)]
            hs.append(lm.layers[t + 1].register_forward_hook(replace))
            try:
                loss = lm.token_losses(ids, batch_size=n)[mask].double().mean().item()
            finally:
                for h in hs:
                    h.remove()
            ev = explained_variance(seen["hat"], seen[t + 1], mask)
            out[t, name] = (loss - clean, ev)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--n", type=int, default=16, help="sequences (one batch)")
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--width", type=int, default=512, help="SAE width")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch default)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs; min time kept")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d = args.d_model
    cfg = Gemma2Config(
        vocab_size=args.vocab, hidden_size=d, intermediate_size=4 * d,
        num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2,
        head_dim=d // 4, sliding_window=args.seq // 4, attn_implementation="eager",
    )  # fmt: skip
    lm = LanguageModel(Gemma2ForCausalLM(cfg))
    g = torch.Generator().manual_seed(1)
    saes = [random_sae(d, args.width, g) for _ in range(args.layers)]
    rng = np.random.default_rng(0)
    perms = [rng.permutation(args.width) for _ in range(args.layers - 1)]
    ids = torch.randint(0, args.vocab, (args.n, args.seq), generator=g)
    mask = default_metric_mask(ids)

    lm.logits(ids[:2])  # warm-up
    wall = {"sweep": [], "naive": []}
    cpu = {"sweep": [], "naive": []}  # process CPU time: less sensitive to a busy machine
    for _ in range(args.repeats):  # alternate, keep the fastest
        for name in ("sweep", "naive"):
            t0, c0 = time.perf_counter(), time.process_time()
            if name == "sweep":
                rows = layer_pruning(lm, saes, perms, ids, mask, batch_size=args.n)
            else:
                ref = naive(lm, saes, perms, ids, mask)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)

    dl = max(
        abs(r["methods"][m]["delta_loss"] - ref[r["layer"], m][0])
        for r in rows
        for m in r["methods"]
    )
    de = max(
        abs(r["methods"][m]["explained_variance"] - ref[r["layer"], m][1])
        for r in rows
        for m in r["methods"]
    )
    print(
        f"model: Gemma2 {args.layers} layers, d={d}, vocab={args.vocab}; batch {args.n}×{args.seq}"
        f"; SAE width {args.width}; {torch.get_num_threads()} thread(s); min of {args.repeats}"
    )
    for label, t in (("wall", wall), ("cpu ", cpu)):
        s, n = min(t["sweep"]), min(t["naive"])
        print(f"{label}: sweep {s:.2f} s   naive {n:.2f} s   ratio {s / n:.2f} (target ≤ 0.6)")
    print(f"max |ΔL diff| {dl:.2e}   max |EV diff| {de:.2e}")
    for r in rows:
        cells = "  ".join(f"{m} ΔL={v['delta_loss']:+.3f} EV={v['explained_variance']:+.3f}"
                          for m, v in r["methods"].items())  # fmt: skip
        print(f"  {r['layer']}->{r['pruned_block']}: {cells}")
    if dl > 1e-4 or de > 1e-4:
        raise SystemExit("sweep and naive loop disagree")


if __name__ == "__main__":
    main()
