"""Feature descriptions from top-activating contexts on the corpus (input for the LLM judge).

A description reads `tokens: 'def', ' self', '(' | e.g. "class Foo(⟦object⟧):"`: the tokens
carrying the most activation mass of the feature (up to `n_tokens`, most first), then the context
of its single strongest activation, the active token in ⟦ ⟧. A feature that is never active on
the description tokens gets the description `NEVER_ACTIVE` (every feature has a description).
"""

from __future__ import annotations

import torch
from torch import Tensor

from saematch.sae import JumpReLUSAE

NEVER_ACTIVE = "never active on the description corpus (dead feature)"


def _clean(s: str) -> str:
    return s.replace("\n", "⏎").replace("\t", "⇥")


@torch.no_grad()
def describe_features(
    sae: JumpReLUSAE,
    acts: Tensor,
    rows: Tensor,
    token_strings: list[str],
    n_tokens: int = 3,
    before: int = 10,
    after: int = 3,
) -> dict[int, str]:
    """Describe every feature of `sae` from acts (R·(T−1), d) of the non-BOS tokens of rows (R, T).

    Deterministic for the same inputs.
    """
    R, T = rows.shape
    ids = rows[:, 1:].reshape(-1)  # (N,) token at each activation
    if acts.shape[0] != ids.numel():
        raise ValueError(
            f"acts has {acts.shape[0]} rows but rows hold {ids.numel()} non-BOS tokens"
        )
    f = sae.encode(acts)  # (N, F)
    mass = torch.zeros(len(token_strings), sae.width).index_add_(0, ids, f)  # (V, F)
    top_val, top_tok = mass.topk(n_tokens, dim=0)  # (k, F)
    best_val, best_pos = f.max(dim=0)  # (F,)
    out: dict[int, str] = {}
    for j in range(sae.width):
        if best_val[j] <= 0:
            out[j] = NEVER_ACTIVE
            continue
        toks = [
            repr(token_strings[t])
            for t, v in zip(top_tok[:, j], top_val[:, j], strict=True)
            if v > 0
        ]
        r, p = divmod(int(best_pos[j]), T - 1)
        p += 1  # position inside the row (BOS at 0 is never described)
        row = rows[r]
        ctx = "".join(token_strings[t] for t in row[max(1, p - before) : p])
        nxt = "".join(token_strings[t] for t in row[p + 1 : p + 1 + after])
        snippet = _clean(f"{ctx}⟦{token_strings[row[p]]}⟧{nxt}")
        out[j] = f'tokens: {", ".join(toks)} | e.g. "{snippet}"'
    return out


def token_strings_of(tokenizer) -> list[str]:
    """The decoded text of every vocabulary id (byte pieces of split characters show as �)."""
    return [tokenizer.decode([i]) for i in range(len(tokenizer))]
