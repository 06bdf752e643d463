"""Layer pruning with matched SAEs (docs/method.md §5, paper Sec. 5.5, Fig. 9–13) and its baselines.

For the pair t → t+1, block t+1 is pruned: its output x_{t+1} is replaced by

    sae_match        D_{t+1}(P E_t(x_t))           (f̂[..., perm[i]] = f[..., i])
    layer_drop       x_t
    encdec_current   D_{t+1}(E_{t+1}(x_{t+1}))
    encdec_previous  D_t(E_t(x_t))                 (App. A)

and the model runs on from block t+2. ΔL = patched CE − clean CE (nats, mean over the
metric tokens' next-token predictions); EV compares the replaced x_{t+1} with the true one.
One clean pass per chunk caches every resid_post; each patched run starts at block t+2.
Where activations come without a model (the planted world), ev_sweep gives the EV alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from saematch.lm import LanguageModel, chunks
from saematch.sae import JumpReLUSAE

# (t, resid (L, B, T, d) indexed by block) -> x̂_{t+1} (B, T, d)
Replacement = Callable[[int, Tensor], Tensor]
BASELINES = ("layer_drop", "encdec_current", "encdec_previous")


class _EVAccumulator:
    """Streaming EV = 1 − Σ‖x̂ − x‖² / Σ‖x − μ‖² (float64; Chan's merge for Σ‖x − μ‖²)."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2, self.err = 0, None, None, 0.0

    def update(self, x_hat: Tensor, x: Tensor) -> None:
        """Add rows x_hat, x (n, d) of selected tokens."""
        x, x_hat = x.double(), x_hat.to(x.device).double()
        self.err += float((x_hat - x).pow(2).sum())
        n_b = x.shape[0]
        if n_b == 0:
            return
        mean_b = x.mean(0)
        m2_b = (x - mean_b).pow(2).sum(0)
        if self.n == 0:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        self.m2 = self.m2 + m2_b + delta.pow(2) * self.n * n_b / n
        self.mean = self.mean + delta * n_b / n
        self.n = n

    def result(self) -> float:
        total = float(self.m2.sum()) if self.m2 is not None else 0.0
        return 1.0 - self.err / total if total > 0 else float("nan")


def permute_codes(f: Tensor, perm) -> Tensor:
    """f̂ = P f with f̂[..., perm[i]] = f[..., i] (docs/method.md §3); f (..., F)."""
    perm = torch.as_tensor(np.asarray(perm), dtype=torch.long, device=f.device)
    F = f.shape[-1]
    if perm.shape != (F,) or not torch.equal(perm.sort().values, torch.arange(F, device=f.device)):
        raise ValueError(f"perm must be a permutation of range({F}), got shape {tuple(perm.shape)}")
    return f[..., torch.argsort(perm)]


def sae_match_replacement(saes: Sequence[JumpReLUSAE], perms: Sequence) -> Replacement:
    """x̂_{t+1} = D_{t+1}(P_t E_t(x_t)) with perms[t] mapping SAE t → t+1."""
    return lambda t, r: saes[t + 1].decode(permute_codes(saes[t].encode(r[t]), perms[t]))


def baseline_replacements(saes: Sequence[JumpReLUSAE]) -> dict[str, Replacement]:
    """App. A baselines: layer drop, encode-decode current, encode-decode previous."""
    return {
        "layer_drop": lambda t, r: r[t],
        "encdec_current": lambda t, r: saes[t + 1](r[t + 1]),
        "encdec_previous": lambda t, r: saes[t](r[t]),
    }


@torch.no_grad()
def replacements(
    saes: dict,
    perms: dict[str, dict],
    baselines: bool,
    folded: dict | None = None,
    fold: dict[str, bool] | None = None,
) -> dict[str, Replacement]:
    """name -> x̂_{t+1} builder: SAE Match per matching (perms[name][t]), plus the App. A
    baselines when `baselines`.

    saes / folded: layer -> SAE, raw / folded; fold[name] says in which units method `name`
    transfers (default: raw). The baselines are the same for both forms (folding keeps x̂).
    """
    fold = fold or {}

    def transfer(p: dict, sae: dict) -> Replacement:
        return lambda t, r: sae[t + 1].decode(permute_codes(sae[t].encode(r[t]), p[t]))

    reps = {name: transfer(p, folded if fold.get(name) else saes) for name, p in perms.items()}
    if baselines:
        reps |= {
            "layer_drop": lambda t, r: r[t],
            "encdec_current": lambda t, r: saes[t + 1](r[t + 1]),
            "encdec_previous": lambda t, r: saes[t](r[t]),
        }
    return reps


def pruning_sweep(
    lm: LanguageModel,
    replacements: dict[str, Replacement],
    input_ids: Tensor,
    metric_mask: Tensor,
    *,
    attention_mask: Tensor | None = None,
    layers: Sequence[int] | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> list[dict]:
    """ΔL and EV of each replacement of x_{t+1}, for every pair t → t+1 in layers.

    input_ids, metric_mask (N, T); metric_mask is True on tokens that count (no BOS, no
    padding). Returns per pair {"layer": t, "pruned_block": t+1, "clean_loss", "n_tokens",
    "methods": {name: {"loss", "delta_loss", "explained_variance"}}}.
    """
    L = lm.n_layers
    pairs = list(range(L - 1)) if layers is None else sorted({int(t) for t in layers})
    bad = [t for t in pairs if not 0 <= t < L - 1]
    if bad:
        raise ValueError(f"pairs t -> t+1 need 0 ≤ t ≤ {L - 2}; got {bad}")
    if not pairs:
        raise ValueError("layers is empty: no pair t -> t+1 to evaluate")
    if metric_mask.shape != input_ids.shape:
        raise ValueError(
            f"metric_mask {tuple(metric_mask.shape)} != input_ids {tuple(input_ids.shape)}"
        )
    top = max(pairs) + 1  # highest block whose resid_post is needed
    clean_sum, n_tok = 0.0, 0
    loss_sum = {(t, m): 0.0 for t in pairs for m in replacements}
    ev = {(t, m): _EVAccumulator() for t in pairs for m in replacements}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        n_chunks = -(-input_ids.shape[0] // batch_size)
        bar = tqdm(total=n_chunks * len(pairs), desc="layer pruning", unit="pair")
    for s in chunks(input_ids.shape[0], batch_size):
        ids = input_ids[s].to(lm.device)
        am = None if attention_mask is None else attention_mask[s].to(lm.device)
        mask = metric_mask[s].to(lm.device).bool().clone()
        mask[:, 0] = False  # position 0 (BOS) is never a target nor a metric token
        resid = lm.resid_post(ids, am, layers=range(top + 1))  # (top+1, B, T, d), one pass
        clean = lm.token_losses_from(top, resid[top], ids, am)[mask]  # (n,) runs no block
        clean_sum += float(clean.double().sum())
        n_tok += clean.numel()
        for t in pairs:
            x_true = resid[t + 1][mask]  # (n, d)
            for name, fn in replacements.items():
                x_hat = fn(t, resid)  # (B, T, d)
                patched = lm.token_losses_from(t + 1, x_hat, ids, am)[mask]
                loss_sum[t, name] += float(patched.double().sum())
                ev[t, name].update(x_hat[mask], x_true)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    if n_tok == 0:
        raise ValueError("metric_mask selects no token after position 0")
    clean_loss = clean_sum / n_tok
    rows = []
    for t in pairs:
        methods = {
            m: {
                "loss": loss_sum[t, m] / n_tok,
                "delta_loss": loss_sum[t, m] / n_tok - clean_loss,
                "explained_variance": ev[t, m].result(),
            }
            for m in replacements
        }
        rows.append(
            {
                "layer": t,
                "pruned_block": t + 1,
                "clean_loss": clean_loss,
                "n_tokens": n_tok,
                "methods": methods,
            }
        )
    return rows


@torch.no_grad()
def ev_sweep(
    replacements: dict[str, Replacement], acts: Iterable[Tensor], layers: Sequence[int]
) -> list[dict]:
    """EV of each replacement of x_{t+1} from activations alone, for every pair t -> t+1.

    For a world without a model (the planted world, docs/method.md §9): `acts` yields chunks (L, n,
    d) of every layer's x for the same n tokens, indexed by layer as pruning_sweep's resid is.
    Rows are pruning_sweep's; "loss", "delta_loss" and "clean_loss" are NaN: without a model
    there is no next-token loss, so ΔL is not defined.
    """
    pairs = sorted({int(t) for t in layers})
    if not pairs:
        raise ValueError("layers is empty: no pair t -> t+1 to evaluate")
    ev = {(t, m): _EVAccumulator() for t in pairs for m in replacements}
    n_tok = 0
    for resid in acts:  # (L, n, d)
        if max(pairs) + 1 >= resid.shape[0]:
            raise ValueError(f"pairs t -> t+1 need t + 1 < {resid.shape[0]}; got {pairs}")
        n_tok += resid.shape[1]
        for t in pairs:
            for name, fn in replacements.items():
                ev[t, name].update(fn(t, resid), resid[t + 1])
    if n_tok == 0:
        raise ValueError("no activations: the source yielded no token")
    nan = float("nan")
    return [
        {
            "layer": t,
            "pruned_block": t + 1,
            "clean_loss": nan,
            "n_tokens": n_tok,
            "methods": {
                m: {"loss": nan, "delta_loss": nan, "explained_variance": ev[t, m].result()}
                for m in replacements
            },
        }
        for t in pairs
    ]


def layer_pruning(
    lm: LanguageModel,
    saes: Sequence[JumpReLUSAE],
    perms: Sequence,
    input_ids: Tensor,
    metric_mask: Tensor,
    *,
    attention_mask: Tensor | None = None,
    batch_size: int = 8,
    baselines: bool = True,
    layers: Sequence[int] | None = None,
    progress: bool = False,
) -> list[dict]:
    """Layer pruning by SAE Match (Sec. 5.5) and, if baselines, the App. A baselines.

    saes[l] is the SAE on resid_post of block l (one per layer); perms[t] (F,) maps SAE t
    to SAE t+1. Each row also has top-level "delta_loss" and "explained_variance" of SAE
    Match; see pruning_sweep for the rest.
    """
    if len(saes) != lm.n_layers:
        raise ValueError(f"need one SAE per layer: got {len(saes)} SAEs for {lm.n_layers} layers")
    if len(perms) != lm.n_layers - 1:
        raise ValueError(
            f"need n_layers − 1 = {lm.n_layers - 1} perms (t -> t+1), got {len(perms)}"
        )
    saes = [s.to(lm.device) for s in saes]
    reps = {"sae_match": sae_match_replacement(saes, perms)}
    if baselines:
        reps |= baseline_replacements(saes)
    rows = pruning_sweep(
        lm,
        reps,
        input_ids,
        metric_mask,
        attention_mask=attention_mask,
        layers=layers,
        batch_size=batch_size,
        progress=progress,
    )
    for row in rows:
        row["delta_loss"] = row["methods"]["sae_match"]["delta_loss"]
        row["explained_variance"] = row["methods"]["sae_match"]["explained_variance"]
    return rows


def pruning_table(rows: list[dict]) -> list[dict]:
    """Flatten pruning rows to one dict per (layer, method) for tables and plots."""
    return [
        {
            "layer": r["layer"],
            "pruned_block": r["pruned_block"],
            "method": m,
            "clean_loss": r["clean_loss"],
            "n_tokens": r["n_tokens"],
            **v,
        }
        for r in rows
        for m, v in r["methods"].items()
    ]
