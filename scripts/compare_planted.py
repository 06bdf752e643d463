"""Validate saematch.compare against the planted truth; write the CSV and the docs page.

    nice -n 19 python scripts/compare_planted.py   # run; writes docs/data/compare_planted.csv
                                                   # + .json (commit, planted sets), the page
    python scripts/compare_planted.py --docs-only  # regenerate docs/compare.md from them

Pairs of SAEs of the default planted world (docs/method.md §9; world seed 0, so one truth),
trained with today's default recipe, three SAE seeds per layer at width 384 and three at 768:

* seeds:      layer t, SAE seed k against seed l, for the replicate pairs (0,1), (0,2), (1,2);
* widths:     layer t, width 384 against width 768 of the same seed index k (k = 0, 1, 2):
              the rectangular matching and the families;
* widths_unfolded: the same pairs matched on the unfolded weights (fold=False);
* next_layer: layer t against t + 1 (seed k, k = 0, 1, 2): features die, split and are born,
              so "unshared" has true positives (same[k] = k's successors);
* zoo_seeds:  the test zoo's two seeds of each layer (no truth: PW-MCC and shared share only).

Each row: saematch.compare.compare (mode both, folded, the rotation null at α = 0.05) and
saematch.compare.truth.score_comparison. Timings are not recorded (a shared machine).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CSV = ROOT / "docs" / "data" / "compare_planted.csv"
META = CSV.with_suffix(".json")  # the commit, the planted sets, the recipe of the run
DOC = ROOT / "docs" / "compare.md"
KINDS = ("seeds", "widths", "widths_unfolded", "next_layer", "zoo_seeds")
N_SEEDS = 3  # SAE seeds per layer and width: three replicate pairs per kind
SEED_PAIRS = ((0, 1), (0, 2), (1, 2))
WIDE = 768


def rows_of_pair(kind, layer, a, b, c, truth_args, replicate: str = "0") -> dict:
    from saematch.compare.truth import score_comparison

    s = c.summary()
    row = {"kind": kind, "replicate": replicate, "layer": layer, "a": a.name, "b": b.name}
    keep = (
        "width_a", "width_b", "pwmcc_decoder", "pwmcc_encoder", "share_cos0.7_decoder",
        "share_cos0.7_encoder", "mse_match_mean_abs_cos_decoder",
        "mse_match_share_cos0.7_decoder", "mse_certified", "kappa_star", "shared_pairs",
        "shared_share", "unshared_a", "unshared_b",
    )  # fmt: skip
    row.update({k: s[k] for k in keep})
    if truth_args is not None:
        row.update(score_comparison(c, *truth_args))
    return row


def git_commit() -> str:
    """HEAD of this checkout, with "+changes" when the tracked files differ from it."""
    import subprocess

    def git(*args) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short=12", "HEAD") + ("+changes" if dirty else "")


def run(cache_dir: str | None, layers: list[int]) -> tuple[list[dict], dict]:
    """Every pair of the module doc, scored; returns the rows and what the run used."""
    import torch

    from saematch.compare import compare
    from saematch.planted import descendants, ensure_planted, represented

    torch.set_num_threads(1)
    narrow = ensure_planted("default", cache_dir=cache_dir, seed=0, n_seeds=N_SEEDS,
                            progress=False)  # fmt: skip
    world = narrow.truth

    def rep(sae, t):
        return represented(sae.W_dec, world.directions[t]).numpy()

    def score(pairs) -> None:
        for kind, replicate, t, a, b, tb, same in pairs:
            c = compare(a, b, fold=kind != "widths_unfolded")
            rows.append(rows_of_pair(kind, t, a, b, c, (rep(a, t), rep(b, tb), same), replicate))
            line = c.console().splitlines()[1].strip()
            print(f"{kind} {replicate} layer {t}: {line}", flush=True)

    def ident(t):
        return [{k} for k in range(len(world.directions[t]))]

    rows = []
    for t in layers:  # the width-384 set first: the 768 one may still be training
        score(("seeds", f"{k}-{l}", t, narrow.load_sae(t, k), narrow.load_sae(t, l), t, ident(t))
              for k, l in SEED_PAIRS)  # fmt: skip
        if t + 1 < narrow.n_layers:
            score(("next_layer", str(k), t, narrow.load_sae(t, k), narrow.load_sae(t + 1, k),
                   t + 1, descendants(world.successor, t, 1)) for k in range(N_SEEDS))  # fmt: skip
    wide = ensure_planted("default", cache_dir=cache_dir, seed=0, n_seeds=N_SEEDS, width=WIDE,
                          progress=False)  # fmt: skip
    for t in layers:
        for k in range(N_SEEDS):
            a, b = narrow.load_sae(t, k), wide.load_sae(t, k)
            score((kind, str(k), t, a, b, t, ident(t)) for kind in ("widths", "widths_unfolded"))
    from saematch.sources import load_sae
    from saematch.zoo import ensure_zoo
    from saematch.zoo.build import second_seed_dir

    zoo = ensure_zoo("test", cache_dir, 0, False)
    for t in range(zoo.n_layers):
        a = zoo.load_sae(t)
        b = load_sae(second_seed_dir(zoo.root, t, zoo.default_sparsity))
        rows.append(rows_of_pair("zoo_seeds", t, a, b, compare(a, b), None))
    cfg = narrow.manifest["config"]
    meta = {
        "commit": git_commit(),
        "planted_sets": [narrow.root.name, wide.root.name],
        "recipe": cfg.get("recipe"),
        "n_seeds": N_SEEDS,
        "widths": [narrow.width, wide.width],
        "layers": layers,
        "zoo": zoo.root.name,
    }
    return rows, meta


def write_csv(rows: list[dict]) -> None:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    CSV.parent.mkdir(parents=True, exist_ok=True)
    with CSV.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k)) for k in cols})


def _fmt(v):
    if isinstance(v, float | np.floating):
        return "" if not math.isfinite(float(v)) else f"{float(v):.6g}"
    return v


def read_csv() -> list[dict]:
    with CSV.open() as f:
        return list(csv.DictReader(f))


def stat(rows: list[dict], key: str, kind: str = "pct") -> str:
    """mean ± sd of a column, or '—' when it is empty. With ≥ 2 replicate pairs the mean is
    over every row and the sd over the replicates' means (each the mean over the layers): the
    spread between seeds; with one replicate (zoo_seeds) the sd is over layers, marked †.
    kind: pct (×100, 1 decimal), cos (3 decimals), count (1 decimal)."""
    vals = [(r["replicate"], float(r[key])) for r in rows if r.get(key) not in (None, "")]
    if not vals:
        return "—"
    k, digits = {"pct": (100.0, 1), "cos": (1.0, 3), "count": (1.0, 1)}[kind]
    reps = sorted({rep for rep, _ in vals})
    mean = np.mean([v for _, v in vals])
    if len(reps) > 1:
        per = [np.mean([v for rep, v in vals if rep == r]) for r in reps]
        return f"{k * mean:.{digits}f} ± {k * np.std(per, ddof=1):.{digits}f}"
    sd = np.std([v for _, v in vals], ddof=1) if len(vals) > 1 else float("nan")
    return f"{k * mean:.{digits}f}" + (f" ± {k * sd:.{digits}f}†" if np.isfinite(sd) else "")


METRICS = (  # (column, label, format: pct | cos | count)
    ("pwmcc_decoder", "PW-MCC, decoder (|cos| matching)", "cos"),
    ("pwmcc_encoder", "PW-MCC, encoder (|cos| matching)", "cos"),
    ("share_cos0.7_decoder", "pairs with decoder |cos| > 0.7 (|cos| matching), %", "pct"),
    ("mse_match_mean_abs_cos_decoder", "mean decoder |cos| on the MSE matching", "cos"),
    ("shared_share", "shared (rotation null) / narrow width, %", "pct"),
    ("acc_exact", "pair accuracy, exact MSE matching, %", "pct"),
    ("ceiling_exact", "best any one-to-one matching can do, %", "pct"),
    ("acc_cos_decoder", "pair accuracy, decoder |cos| matching, %", "pct"),
    ("acc_shared", "pair accuracy of the shared pairs, %", "pct"),
    ("unshared_prec_a", "unshared precision, side a, %", "pct"),
    ("unshared_rec_a", "unshared recall, side a, %", "pct"),
    ("unshared_prec_b", "unshared precision, side b, %", "pct"),
    ("unshared_rec_b", "unshared recall, side b, %", "pct"),
    ("unshared_true_b", "truly unshared known features, side b", "count"),
    ("unshared_dup_b", "predicted unshared but truly shared (duplicates), side b", "count"),
    ("unknown_unshared_b", "predicted unshared, representing nothing, side b", "count"),
    ("family_prec", "family precision, %", "pct"),
    ("family_rec", "family recall, %", "pct"),
    ("family_splits", "narrow features with ≥ 2 family members", "count"),
)


def mean_of(rows: list[dict], key: str) -> float:
    """Mean of a column over rows (NaN when empty)."""
    vals = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
    return float(np.mean(vals)) if vals else float("nan")


BENCH = ROOT / "docs" / "data" / "bench_compare.txt"  # scripts/bench_matching.py --rect output
STAGES = ROOT / "docs" / "data" / "compare_stage_memory.txt"  # scripts/compare_stage_memory.py
RSS_131K = ROOT / "docs" / "data" / "bench_compare_131k_rss.txt"  # VmRSS (KiB) each second
RSS_16X65 = ROOT / "docs" / "data" / "bench_compare_16x65_rss_fa7a914.txt"  # the same, 16k × 65k
RSS_131K_2 = ROOT / "docs" / "data" / "bench_compare_131k_rss_fa7a914.txt"  # 131k's rerun


def sampled_peak(path: Path) -> str:
    """The largest RSS sampled in a monitor file ("HH:MM:SS KiB" lines), as "X GB at T"."""
    import re

    hits = re.findall(r"(?m)^(\d\d:\d\d:\d\d) (\d+)$", path.read_text()) if path.exists() else []
    if not hits:
        return "not recorded"
    t, kib = max(hits, key=lambda h: int(h[1]))
    return f"{int(kib) * 1024 / 1e9:.2f} GB sampled at {t} UTC"


ISSUE_FIGURES = ((131072, 131072, "12GB"), (16384, 65536, "6GB"))  # the two figures asked for


def bench_runs(text: str) -> list[dict]:
    """The runs of docs/data/bench_compare.txt (each starts with its `$ command` line), with
    the numbers bench_matching.py printed, parsed; missing lines leave their fields out."""
    import re

    pats = {
        "size": r"rectangular (\d+) x (\d+), d_model \d+, mode (\w+), max_memory (\S+)",
        "gemm": r"fp32 GEMM of the same pair: ([\d.]+) s wall, ([\d.]+) s CPU",
        "full": r"compare\(\) in full: ([\d.]+) s wall, ([\d.]+) s CPU, \+([\d.]+) GB peak RSS; "
        r"/ fp32 GEMM: ([\d.]+)x wall, ([\d.]+)x CPU; parts \(wall s\) (.*)",
        "cert": r"certificate on (\d+) sampled rows: (\w+)",
        "peak": r"process peak RSS over the run: ([\d.]+) GB \(SAEs ([\d.]+) GB",
        "load": r"load average at start: \(([\d.]+)",
        "commit": r"# commit (\w+), (.*)$",
    }
    runs = []
    for chunk in re.split(r"(?m)^(?=\$ )", text):
        if not chunk.strip():
            continue
        run = {"text": chunk.rstrip()}
        for key, pat in pats.items():
            hit = re.search(pat, chunk, re.M)
            if hit:
                run[key] = hit.groups()
        runs.append(run)
    return runs


def over_budget(run: dict) -> bool:
    """Whether a run's process peak less its SAEs passed its max_memory."""
    peak, saes = (float(x) for x in run.get("peak", ("nan", "nan")))
    return peak - saes > float(run["size"][3].rstrip("GB"))


def bench_table(runs: list[dict]) -> str:
    """One row per run: the pair, its budget, the GEMM and compare() times, the peak."""
    head = (
        "| pair, mode | max_memory | machine (load at start) | fp32 GEMM | compare() | "
        "÷ GEMM wall / CPU | parts (s) | peak beyond the SAEs | certificate | commit |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [head]
    for r in runs:
        if "size" not in r or "full" not in r:
            continue
        n, w, mode, budget = r["size"]
        tw, tc, _, rw, rc, parts = r["full"]
        peak, saes = (float(x) for x in r.get("peak", ("nan", "nan")))
        mark = " (over)" if over_budget(r) else ""
        cert = " ".join(r.get("cert", ("?", "?"))[::-1]) + " rows"
        rows.append(
            f"| {int(n):,} × {int(w):,}, {mode} | {budget} | {r['commit'][1]} "
            f"({float(r['load'][0]):.2f}) | {r['gemm'][0]} s | {tw} s | {rw}× / {rc}× | {parts} | "
            f"{peak - saes:.2f} GB{mark} | {cert} | {r['commit'][0][:7]} |"
        )
    return "\n".join(rows)


def scale_text() -> str:
    """The Scale section: the bench commands and the runs docs/data/bench_compare.txt holds
    (`bench_matching.py --rect ... --compare`), as a table and as printed."""
    bench = "    python scripts/bench_matching.py"
    cmds = (
        f"{bench} --widths 131072 --rect 131072 --mode both --compare --max-memory 12GB\n"
        f"{bench} --widths 16384 --rect 65536 --mode both --compare --max-memory 6GB"
    )
    runs = bench_runs(BENCH.read_text()) if BENCH.exists() else []
    rss_peak, rss_16x65 = sampled_peak(RSS_131K), sampled_peak(RSS_16X65)
    rss_131k_2 = sampled_peak(RSS_131K_2)

    have = {(int(r["size"][0]), int(r["size"][1]), r["size"][3]): r for r in runs if "full" in r}
    said = []
    for n, w, b in ISSUE_FIGURES:
        r = have.get((n, w, b))
        if r is None:
            what = "not measured yet"
        else:
            what = "over its budget" if over_budget(r) else "within it"
        said.append(f"{n:,} × {w:,} at {b}: {what}")
    status = "; ".join(said) + " (the newest run of each, table below)."
    text = f"""Every stage of `compare()` (the exact matching, the shared partial matching, the
families, the two |cos| matchings) is in one memory plan (`saematch.compare.compare.memory_plan`):
a `max_memory` below any stage's own arrays stops with a MemoryError naming the stage before
anything large is allocated, and each stage's solver gets the budget minus its stage's arrays
(the families' GEMM block shrinks to fit). `max_memory` counts what the comparison allocates
beyond the two SAEs, as for `match()`; the bench prints the process peak, SAEs included.

Padding the narrow side to the wide width with zero-cost dummy features turns an n × W
comparison into a W × W problem: bound GEMMs W/n times the pair's, and the dummy rows tie with
every column, so all of them land in the solver's dense rest (a dummy is also every column's
cheapest row: the stored solver reads its clear pairs among the real features only,
`guess.real_top2`, and hands the problem to the streamed solver when its dense rest would not
fit the budget). Where the wide side is at least
twice the narrow one the exact matching solves on a candidate set of wide features only
(each narrow row's cheapest two, from one n × W float32 pass) and proves the result over every
wide feature with a second pass (`saematch.compare.rect`, route `reduced-columns`); it pads
only when the candidates outgrow half the wide side. The shared partial matching (the rotation
null, `shared.py`) is solved on the n × W problem itself, unpadded.
The issue's two figures (ratios to the fp32 GEMM of the same pair in the same
run, wall and CPU; the process peak) come from

{cmds}

on an idle machine. {status}

Runs of the script, from `docs/data/bench_compare.txt` (the commit and the load are in each;
under load read the CPU ratio; "peak beyond the SAEs" is the process peak less the SAEs, so it
includes the interpreter and the bench's own arrays; "(over)" marks a run whose peak passed
its max_memory; benches before 94ccd57 read /proc's KiB as 1000 bytes, so their peaks are
2.4 % low):

{bench_table(runs)}
"""
    text += f"""
What the runs showed, and what changed after them:

- **The shared stage (4,096 × 16,384 on the shared machine, 5b88859)**: its float32
  candidate pass bounded its rounding by γ‖x‖‖y‖ on the augmented rows x = [z, ‖z‖², 1],
  whose constant 1s dwarf features with ‖z‖² ~ 1e-3 (these synthetic SAEs'), so most pairs
  passed the margin and a W × W dense route ran (per-stage peaks at 2,048 × 8,192, 1.5 GB:
  +1.61 GB, 30.2 s, 17.3 s of it in the partial matching). Now the margin is Higham's on the
  z part plus the two norm slots exactly (`fp32.dot_margins`), the pass keeps only exact
  candidates and the stage is unpadded: +0.25 GB, 3.0 s of partial matching, same objective.
- **The exact matching and the two |cos| matchings (16,384 × 65,536, 5b3d52f)**: most of
  compare()'s time (parts `match` and `cosine` in the table). The reduced route's check of
  the columns outside its candidate set ran every tile in float64 (for the same margin reason
  as above). It now screens in float32 with `dot_margins` and decides the few pairs it keeps
  in float64 (a877520).
- **The budget at 16,384 × 65,536 (5b3d52f)**: the reduced route gave its solver everything
  beyond the padded copies it does not make, while the plain features stayed uncounted; the
  run peaked above its 6 GB. Now the route counts its candidate set's slice and padded copies
  and its solver gets the rest (385eef3).
- **The budget at 131,072 × 131,072 (a877520)**: two stages took each pair's float64 cost
  with float64 copies of both sides' rows (2 × 131,072 × 4,610 × 8 bytes and a float32
  gather: ~12 GB on top of the features): `match_rect`'s pair costs (the kernel's peak counter,
  VmHWM, read 21,840,008 KiB, 22.4 GB, between the end of the exact matching's proof and the
  shared stage) and the
  families' exact costs (RSS sampled each second with py-spy stacks,
  `docs/data/bench_compare_131k_rss.txt`: {rss_peak}, inside `families._exact`). The pair costs,
  pair cosines and family costs now use the proof's pair-by-pair float64 dot
  (`proof.exact_costs`) and the unit directions are normalised in row blocks (dce3af0).
- **The budget at 16,384 × 65,536, again (fa7a914)**: the rerun passed its budget inside the
  exact matching, in the stored solver's guess (RSS and py-spy stacks each second,
  `docs/data/bench_compare_16x65_rss_fa7a914.txt`: {rss_16x65}, inside `guess.sub_cost`; the
  run was stopped there). On the reduced route's padded candidate problem every dummy row
  costs 0, so it is every column's cheapest row: the stored top-2 found no clear pair and the
  whole padded problem became the guess's dense float32 rest, beside the 16-bit estimate. The
  guess now reads clear pairs among the real features (`guess.real_top2`; a test checks the
  rest shrinks from the whole problem to the dummies and the unclear rows), and the stored
  solver checks its dense rest against the budget before building it, else the dispatcher runs
  the streamed solver, whose rest is budgeted (the bench prints the rest's rows; ea7df26).
- **The families at 131,072 × 131,072 (fa7a914)**: compare() gives the families stage every
  byte its budget leaves, and the stage ranked each block with numpy float64 temporaries (56
  bytes an entry: a block of ~970 wide rows was ~7 GB at 131k). The rerun's RSS, sampled each
  second (`docs/data/bench_compare_131k_rss_fa7a914.txt`: {rss_131k_2}, in the families), stayed
  within its budget by little. One compiled loop now ranks each float32 block, 4 bytes an
  entry (b619a48; a test checks it against the dense float64 definition); not re-measured at
  131k."""
    if STAGES.exists():
        text += f"""

Per-stage peaks and times (`scripts/compare_stage_memory.py`: VmHWM reset around each stage;
`docs/data/compare_stage_memory.txt`):

```
{STAGES.read_text().rstrip()}
```"""
    for r in runs:
        text += f"""

```
{r["text"]}
```"""
    return text


def write_docs(rows: list[dict], meta: dict) -> None:
    """docs/compare.md: the method in brief, the table of means ± sd, where measures mislead."""
    by = {k: [r for r in rows if r["kind"] == k] for k in KINDS}

    def shape(k: str) -> str:  # replicate pairs × layers of a kind
        n_rep = len({r["replicate"] for r in by[k]})
        return f"{n_rep} × {len(by[k]) // max(n_rep, 1)}"

    head = "| measure | " + " | ".join(f"{k} ({shape(k)})" for k in KINDS) + " |"
    lines = [head, "|" + "---|" * (len(KINDS) + 1)]
    for col, label, fmt in METRICS:
        cells = " | ".join(stat(by[k], col, fmt) for k in KINDS)
        lines.append(f"| {label.replace('|', chr(92) + '|')} | {cells} |")  # \| in a table
    certified = all(r.get("mse_certified") == "True" for r in rows)
    seeds = by["seeds"]
    dup = stat(seeds, "unshared_dup_b", "count")
    unk = stat(seeds, "unknown_unshared_b", "count")
    w = by["widths"]
    acc_mse, acc_cos = stat(w, "acc_exact"), stat(w, "acc_cos_decoder")
    acc_sh, ceil = stat(w, "acc_shared"), stat(w, "ceiling_exact")
    acc_unf = stat(by["widths_unfolded"], "acc_exact")
    gap = mean_of(by["widths_unfolded"], "acc_exact") - mean_of(w, "acc_exact")
    fold_note = (
        f"Folding θ costs {100 * gap:.1f} points here: SAEs of different widths learn different "
        "thresholds, and folding turns that difference into distance, so for different widths "
        "compare the `unfolded_*` numbers (printed by default) before trusting the folded pairs."
        if gap > 0.02
        else f"Folded and unfolded differ by {100 * gap:.1f} points under this recipe (the old "
        "`controller` recipe's SAEs lost ~14 points to folding across widths)."
    )
    scale = scale_text()
    text = f"""# Comparing two SAEs (`experiment=compare`)

<!-- generated by scripts/compare_planted.py from docs/data/compare_planted.csv; do not edit -->

`saematch experiment=compare experiment.a=<ref> experiment.b=<ref>` compares two SAEs that read
one stream (same `d_model`, any widths; references: `planted:layer=3[,index=1][,width=768]`,
`zoo:layer=2[,index=1]`, `gemma-scope:<repo>:<sae id>`, `llama-scope:<repo>:<folder>`,
`saelens:<release>:<id>`, `file:<path>`). It reports, with the matching each number comes from:

* **PW-MCC**: mean |cos| over the |cos|-optimal one-to-one matching (Hungarian, rectangular),
  of decoder rows and of encoder columns, and the share of those pairs above |cos| 0.7 (Paulo &
  Belrose); the same two numbers on saematch's folded-MSE matching;
* the **exact matching** on the folded MSE of decoder + encoder (docs/method.md §3): for
  different widths every feature of the narrow SAE gets a distinct partner on the wide one,
  proven optimal by LP duals (the certified square solvers run on the narrow side padded with
  zero-cost dummy features, against a candidate set of wide features where the wide side is
  ≥ 2× wider; `saematch.compare.rect`);
* **shared / unshared**: the exact partial matching at the rotation null's κ* (α = 0.05), so a
  pair forced by the one-to-one constraint is never counted as shared;
* **families**: each wide feature joins the narrow feature it is most similar to when that
  similarity beats κ*; a family of ≥ 2 is a split (or duplicated) feature.

The match file (`matchings/compare.json` + `.safetensors`, format version 2) holds the exact
matching with its duals, `shared_perm` and the families; `saematch.load_matching` reads it.
`compare.html` (+ `compare_data/`) in the run dir shows the two dictionaries side by side, opened
from disk with no server: every pair with its cost and |cos| of decoder and encoder, its status
(shared, forced by the one-to-one constraint, unshared on either side), the wide side's families
under their narrow parent with their confidence, filters by status and |cos|, sorting, and search
by `a/17`, `b/40` or words of a description.

## Against the planted truth

Default planted world (6 layers, 192 true features in d 64; world seed 0), SAEs trained with
the `{meta["recipe"]}` recipe (today's default), three SAE seeds per layer at width
{meta["widths"][0]} and three at width {meta["widths"][1]} (planted sets
`{meta["planted_sets"][0]}` and `{meta["planted_sets"][1]}`; commit `{meta["commit"]}`).
`seeds`: two SAEs of one layer trained with different seeds, the replicate pairs (0, 1),
(0, 2), (1, 2); `widths`: width {meta["widths"][0]} against {meta["widths"][1]} of the same
seed index k = 0, 1, 2 (folded, as the paper; `widths_unfolded`: the same pairs on the unfolded
weights); `next_layer`: layer t against t + 1, seed k (features die, split, are born:
"unshared" has a truth); `zoo_seeds`: the test-size zoo's two seeds per layer (no truth; a
tiny, briefly trained zoo: its SAEs agree with each other little). The header gives replicate
pairs × layers; a cell is the mean over all of them ± the sd over the replicate pairs' means
(the spread between seeds); † marks an sd over layers (one replicate). A feature is *known*
when it represents a true feature (decoder cos ≥ 0.9); scores use known features only. Every
exact matching was {"certified" if certified else "NOT all certified"} optimal.

**Not measured: the default zoo's two seeds per layer** (the issue asks for them). Building
that zoo trains its language model and SAEs (`{meta["zoo"]}` is the only zoo in the cache), which
did not fit this session on the shared 2-core machine; `zoo_seeds` is the test-size zoo only.

{chr(10).join(lines)}

## Where the measures mislead

* **PW-MCC and the share above |cos| 0.7 understate agreement on what was learnt.** Between
  seeds PW-MCC is {stat(seeds, "pwmcc_decoder", "cos")} and only
  {stat(seeds, "share_cos0.7_decoder")} % of the |cos| matching's pairs are above 0.7, yet
  {stat(seeds, "acc_exact")} % of the pairs of known features are right. Each SAE has twice as
  many latents as the world has true features; the latents that represent none are paired
  anyway and averaged in ({unk} per layer on side b are left unshared and represent nothing).
  The low PW-MCC measures those unused latents, not disagreement on the true features.
* **"Unshared" mixes three things.** Of the known features predicted unshared on side b
  between seeds, {stat(seeds, "unshared_prec_b")} % are truly unshared (precision); the rest
  are latents of a true feature the other SAE also has ({dup} per layer: duplicates cannot all
  have a one-to-one partner). The {unk} latents per layer that represent nothing are not in
  either score (known features only). Recall ({stat(seeds, "unshared_rec_b")} %): a truly
  unshared known feature is often still paired, with a similar latent above κ*. Where features
  really differ (`next_layer`) precision is {stat(by["next_layer"], "unshared_prec_b")} % and
  recall {stat(by["next_layer"], "unshared_rec_b")} %.
* **Forced pairs.** The exact one-to-one matching pairs every narrow feature; PW-MCC averages
  over all of them, so a dictionary with many dead or noise latents scores lower without
  learning different features, and a wide dictionary is never penalised for what it has
  extra. Between seeds the exact matching's pair accuracy ({stat(seeds, "acc_exact")} %) sits
  below that of its shared pairs ({stat(seeds, "acc_shared")} %): the forced pairs carry the
  errors. The shared count (null) and the unshared counts on both sides are the honest pair.
* **|cos| vs MSE.** PW-MCC's matching maximises |cos| of one part; the folded MSE matching also
  weighs norms and the other part. Between seeds their pair accuracies are
  {stat(seeds, "acc_exact")} % (MSE) and {stat(seeds, "acc_cos_decoder")} % (|cos|); neither
  number transfers to the other's definition, so each number above names its matching.
* **The folded MSE across widths.** Between widths {meta["widths"][0]} and
  {meta["widths"][1]} the exact folded-MSE matching pairs {acc_mse} % right, the decoder |cos|
  matching {acc_cos} % (ceiling {ceil} %), the MSE matching on unfolded weights {acc_unf} %.
  {fold_note} The shared pairs of the folded matching are {acc_sh} % right.
* **Accuracy ceiling.** With duplicated latents no one-to-one matching can be fully right; the
  ceiling row is that bound.

## Scale

{scale}

Regenerate: `nice -n 19 python scripts/compare_planted.py` (trains the two planted sets on
first use, minutes each on an idle core); `--docs-only` rewrites this page from
`docs/data/compare_planted.csv` and `.json`.
"""
    DOC.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--docs-only", action="store_true", help="regenerate the docs from the CSV")
    ap.add_argument("--layers", type=int, nargs="+", default=list(range(6)))
    args = ap.parse_args()
    if not args.docs_only:
        rows, meta = run(os.environ.get("SAEMATCH_CACHE"), args.layers)
        write_csv(rows)
        META.write_text(json.dumps(meta, indent=1) + "\n")
    write_docs(read_csv(), json.loads(META.read_text()))
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
