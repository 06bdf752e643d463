"""resid_post of every decoder block in one forward pass (forward hooks on model.model.layers)."""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def resid_post(model, rows: Tensor, batch: int = 32) -> Tensor:
    """Outputs of every block for the non-BOS tokens of rows (R, T): (n_layers, R·(T−1), d).

    Hooks read each block's output directly; `hidden_states[-1]` of HF models is taken after
    the final norm, so it is not the last block's resid_post.
    """
    layers = model.model.layers
    store: list[list[Tensor]] = [[] for _ in layers]

    def hook(i):
        def fn(_module, _inp, out):
            h = out[0] if isinstance(out, tuple) else out  # (B, T, d)
            store[i].append(h[:, 1:].reshape(-1, h.shape[-1]).float().clone())

        return fn

    handles = [layer.register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
    try:
        model.eval()
        for i in range(0, len(rows), batch):
            model.model(input_ids=rows[i : i + batch])
    finally:
        for h in handles:
            h.remove()
    return torch.stack([torch.cat(s) for s in store])
