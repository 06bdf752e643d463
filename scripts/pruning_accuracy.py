"""What layer-pruning EV says about matching accuracy, on the planted world (issue 20, part 5).

    python scripts/pruning_accuracy.py [--seeds 0 1 2] [--size default] [--knob recipe=published]
        [--tokens 8192] [--out docs/data] [--force]

For every seed's planted set and adjacent pair t → t+1, block t+1 is "pruned" as in the
paper's Sec. 5.5 (x̂_{t+1} = D_{t+1}(P E_t(x_t)); saematch.pruning.ev_sweep on held-out tokens
of the generator: no LM here, so EV only, no ΔL) for:
- every matching variant (vanilla and mode × fold under the paper's cost),
- `truth`: the best bijection the truth allows (controls.truth_permutation; among equally
  right pairings the paper's folded cost decides, so latents outside the truth's support are
  paired as SAE Match would pair them),
- `truth_shuffled_<q>`: `truth` with a share q of its latents re-paired at random, so EV can be
  read against accuracy with the SAEs held fixed,
each transferred in raw units (E_t, D_{t+1} as trained; layer_pruning's default) and in folded
units (folded SAEs; `experiment.transfer=folded`), and the App. A baselines (layer drop,
encode-decode current / previous). Each permutation's matching accuracy is scored beside it.

Writes <out>/pruning_accuracy.csv (seed, pair, method, transfer, accuracy, ev) and
pruning_accuracy.json (planted sets, commit, command); skips when they are up to date.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from findings_io import (  # noqa: E402
    command_line,
    git_commit,
    parse_knobs,
    planted_parser,
    planted_sets,
    source_key,
    up_to_date,
    write_csv,
    write_sidecar,
)

SHUFFLED = (0.1, 0.25, 0.5, 0.75, 1.0)  # shares of the truth permutation re-paired at random


def seed_rows(seed: int, planted, n_tokens: int) -> list[dict]:
    """EV and accuracy of every permutation and baseline, both transfer units, one seed."""
    import numpy as np

    from saematch.matching import match
    from saematch.matching.cost import augmented_features
    from saematch.planted import VARIANTS, matching_accuracy, represented
    from saematch.planted.controls import corrupt_permutation, truth_permutation
    from saematch.planted.evaluate import parse_variant
    from saematch.planted.world import descendants
    from saematch.pruning import baseline_replacements, ev_sweep, permute_codes

    saes = [s.to("cpu") for s in planted.load_saes()]
    world = planted.truth
    folded = [s.fold() for s in saes]
    L = len(saes)
    reps = [represented(s.W_dec, world.directions[t]) for t, s in enumerate(saes)]
    truth1 = [descendants(world.successor, t, 1) for t in range(L - 1)]

    perms: dict[str, list[np.ndarray]] = {}
    for v in VARIANTS:
        how = parse_variant(v)
        perms[v] = [
            np.arange(saes[t].width)
            if how is None
            else match(saes[t], saes[t + 1], mode=how[0], fold=how[1]).perm
            for t in range(L - 1)
        ]

    def paper_cost(a, b):  # (F_A, F_B) dense folded `both` cost, the truth's tie-break
        xa = augmented_features(a, "both", "a", np.float64, fold=True)
        return xa @ augmented_features(b, "both", "b", np.float64, fold=True).T

    perms["truth"] = [
        truth_permutation(reps[t], reps[t + 1], truth1[t], paper_cost(saes[t], saes[t + 1]))
        for t in range(L - 1)
    ]
    for q in SHUFFLED:
        perms[f"truth_shuffled_{q:g}"] = [
            corrupt_permutation(p, q, seed=1000 * seed + t) for t, p in enumerate(perms["truth"])
        ]

    def transfer(sae_list, p):
        return lambda t, r: sae_list[t + 1].decode(permute_codes(sae_list[t].encode(r[t]), p[t]))

    replacements = {}
    for name, p in perms.items():
        replacements[f"{name}|raw"] = transfer(saes, p)
        replacements[f"{name}|folded"] = transfer(folded, p)
    replacements |= {f"{k}|-": fn for k, fn in baseline_replacements(saes).items()}

    acts = planted.activations(n_tokens)  # (L, n, d), the held-out stream
    chunks = (acts[:, i : i + 2048] for i in range(0, n_tokens, 2048))
    rows = []
    for r in ev_sweep(replacements, chunks, range(L - 1)):
        t = r["layer"]
        for key, v in r["methods"].items():
            name, transfer_units = key.split("|")
            acc = (
                matching_accuracy(perms[name][t], reps[t], reps[t + 1], truth1[t]).accuracy
                if name in perms
                else float("nan")
            )
            rows.append(
                {
                    "seed": seed,
                    "pair": f"{t}-{t + 1}",
                    "method": name,
                    "transfer": transfer_units,
                    "accuracy": float(acc),
                    "ev": float(v["explained_variance"]),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = planted_parser(__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=8192)
    args = p.parse_args(argv)
    git_commit()  # the code this run starts with, recorded in the sidecar
    if args.tokens < 1:
        raise SystemExit(f"--tokens {args.tokens}: need at least 1 token")
    knobs = parse_knobs(args.knob)
    sets = planted_sets(args.size, args.seeds, knobs, args.cache_dir)
    key = source_key(
        sets, {"size": args.size, "knobs": knobs, "tokens": args.tokens, "shuffled": SHUFFLED}
    )
    sidecar = args.out / "pruning_accuracy.json"
    if not args.force and up_to_date(sidecar, key):
        print(f"[pruning_accuracy] up to date: {sidecar}", flush=True)
        return 0
    rows = []
    for seed, planted in sets.items():
        print(f"[pruning_accuracy] seed {seed}: {planted.root}", flush=True)
        rows += seed_rows(seed, planted, args.tokens)
    write_csv(args.out / "pruning_accuracy.csv", rows)
    write_sidecar(sidecar, key, {}, command_line("pruning_accuracy.py", argv))
    print(f"[pruning_accuracy] wrote {args.out}/pruning_accuracy.csv", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
