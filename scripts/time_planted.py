"""Time a planted preset's build from a short run, and extrapolate the full build (an estimate).

Builds the preset's world (the truth), samples a few chunks of tokens, and trains its SAEs for
a few steps on a few layers at a smaller batch; the SAE step cost is linear in layers × batch
(every matmul is), so the full build's SAE time is estimated as

    t_step(measured) × (n_layers · batch) / (layers · batch_measured) × steps

    python scripts/time_planted.py --size 16k --layers 2 --batch 512 --steps 20

Run it under `flock /tmp/saematch-heavy.lock` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from saematch.planted import planted_config
from saematch.planted.sample import CHUNK, sample_activations
from saematch.planted.world import make_world
from saematch.zoo.progress import Progress
from saematch.zoo.threads import pick_threads, torch_threads
from saematch.zoo.train_sae import train_saes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="16k")
    ap.add_argument("--layers", type=int, default=2, help="layers trained in the probe")
    ap.add_argument("--batch", type=int, default=512, help="batch of the probe")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--tokens", type=int, default=2 * CHUNK, help="tokens sampled (timing)")
    args = ap.parse_args()
    cfg = planted_config(args.size)
    out: dict = {"size": args.size, "probe": vars(args)}
    with torch_threads(pick_threads(2)):
        t = time.perf_counter()
        world = make_world(cfg.world, 0)
        out["world_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        acts = sample_activations(world, args.tokens, 1)  # (L, n, d)
        per_token = (time.perf_counter() - t) / args.tokens
        out["sample_s_per_1k_tokens"] = round(per_token * 1000, 3)
        x = acts[: args.layers]
        took = []
        for steps in (2, args.steps):  # the difference leaves out the init (θ quantiles)
            t = time.perf_counter()
            train_saes(x, x[:, :256], [cfg.l0_target], cfg.width, steps=steps,
                       batch=args.batch, lr=cfg.lr, bandwidth=cfg.bandwidth, seed=0,
                       progress=Progress(False))  # fmt: skip
            took.append(time.perf_counter() - t)
        step = (took[1] - took[0]) / (args.steps - 2)
    scale = (cfg.world.n_layers * cfg.batch) / (args.layers * args.batch)
    out["probe_step_s"] = round(step, 3)
    out["estimate"] = {
        "sample_train_tokens_s": round(per_token * (cfg.n_train + cfg.n_heldout), 1),
        "sae_step_s": round(step * scale, 2),
        "sae_training_h": round(step * scale * cfg.steps / 3600, 1),
        "activations_gb": round(cfg.world.n_layers * cfg.n_train * cfg.world.d_model * 4 / 1e9, 2),
    }
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    out["peak_rss_gb"] = round(peak_kib * 1024 / 1e9, 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
