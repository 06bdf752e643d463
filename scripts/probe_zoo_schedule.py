"""Probe the zoo's SAE schedule: same-layer seed agreement, transfer EV and own EV per setting.

Reads the tokenizer and LM of a built zoo (its model/ folder), takes the activations the zoo
build would take, and trains two seeds per chosen layer at the zoo's default L0 with
saematch.zoo.train_sae for each (steps, lr, batch) setting given; prints one line per layer.

    python scripts/probe_zoo_schedule.py --zoo <cache>/zoo/default-seed0 --layers 0 2 5 \
        --setting 3000,1e-2,512 --setting 1500,1e-2,512

Run it under `flock /tmp/saematch-heavy.lock` on a shared machine (minutes of two cores).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import Gemma2ForCausalLM, PreTrainedTokenizerFast

from saematch.zoo.activations import resid_post
from saematch.zoo.agreement import seed_agreement
from saematch.zoo.build import corpus, pick_sae_rows
from saematch.zoo.config import get_config
from saematch.zoo.progress import Progress
from saematch.zoo.threads import pick_threads
from saematch.zoo.tokenizer import chunk_with_bos, token_stream
from saematch.zoo.train_sae import train_saes


def activations(root: Path, size: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, N, d) training and (L, H, d) held-out resid_post, as zoo/build.py takes them."""
    cfg = get_config(size)
    tok = PreTrainedTokenizerFast.from_pretrained(root / "model")
    model = Gemma2ForCausalLM.from_pretrained(root / "model", attn_implementation="eager")
    texts, held = corpus(cfg)
    rows = chunk_with_bos(token_stream(tok, texts), cfg.seq_len, tok.bos_token_id)
    held_rows = chunk_with_bos(token_stream(tok, held), cfg.seq_len, tok.bos_token_id)
    sae_rows, eval_rows = pick_sae_rows(cfg, seed, rows, held_rows)
    return resid_post(model, sae_rows), resid_post(model, eval_rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--zoo", type=Path, required=True, help="a built zoo folder (model/ inside)")
    ap.add_argument("--size", default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, nargs="+", default=[0, 2, 5])
    ap.add_argument("--l0", type=int, default=None, help="target L0 (default: the zoo's)")
    ap.add_argument("--width", type=int, default=None, help="SAE width (default: the zoo's)")
    ap.add_argument("--setting", action="append", required=True, help="steps,lr,batch")
    ap.add_argument("--json", type=Path, default=None, help="append results here (JSON lines)")
    args = ap.parse_args()
    cfg = get_config(args.size)
    torch.set_num_threads(pick_threads(cfg.max_threads))
    acts, held = activations(args.zoo, args.size, args.seed)
    acts, held = acts[args.layers], held[args.layers]
    l0 = args.l0 or cfg.default_l0
    for setting in args.setting:
        steps, lr, batch = setting.split(",")
        t0 = time.perf_counter()
        res = train_saes(
            acts,
            held,
            [l0, l0],
            args.width or cfg.width,
            steps=int(steps),
            batch=int(batch),
            lr=float(lr),
            bandwidth=cfg.sae_bandwidth,
            seed=args.seed,
            progress=Progress(False, {"saes": 1.0}),
        )
        wall = time.perf_counter() - t0
        for i, layer in enumerate(args.layers):
            g = seed_agreement(res.saes[i][0], res.saes[i][1], held[i]).to_dict()
            row = {"setting": setting, "l0_target": l0, "width": args.width or cfg.width}
            row |= {"layer": layer, "wall_s": round(wall, 1), **g}
            row["l0"] = round(res.metrics[i][0]["l0"], 2)
            row["dead"] = round(res.metrics[i][0]["dead_frac"], 3)
            row["lambda"] = round(res.metrics[i][0]["l0_coeff"], 3)
            print(json.dumps(row), flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
