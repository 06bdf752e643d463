"""JumpReLU sparse autoencoders and threshold folding (docs/method.md §1–2, paper eq. 4)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch
from torch import Tensor

TENSOR_NAMES = ("W_enc", "b_enc", "W_dec", "b_dec", "threshold")


def _check_finite(name: str, t: Tensor) -> None:
    bad = ~torch.isfinite(t)
    if bad.any():
        idx = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{name} has a non-finite value ({t[idx].item()}) at index {idx}; "
            "the SAE file is corrupt or was saved mid-training."
        )


@dataclass(eq=False)
class JumpReLUSAE:
    """A JumpReLU SAE on one residual-stream site (Gemma Scope `params.npz` layout).

    pre = x @ W_enc + b_enc;  f = pre * (pre > threshold);  x_hat = f @ W_dec + b_dec.
    A ReLU SAE is the special case threshold = 0 (it cannot be folded). A TopK SAE (k set)
    keeps only the k largest pre-activations of each row first: f = relu(topk_k(pre)), with
    threshold = 0; it has no θ, so folding is undefined.
    """

    W_enc: Tensor  # (d_model, F)
    b_enc: Tensor  # (F,)
    W_dec: Tensor  # (F, d_model)
    b_dec: Tensor  # (d_model,)
    threshold: Tensor  # (F,)
    name: str = ""
    meta: dict = field(default_factory=dict)
    k: int | None = None  # TopK SAEs: active features per row; None for JumpReLU / ReLU

    def __post_init__(self) -> None:
        for n in TENSOR_NAMES:
            t = getattr(self, n)
            if not isinstance(t, Tensor):
                t = torch.as_tensor(t)
                setattr(self, n, t)
            if not t.is_floating_point():
                raise ValueError(f"{n} must be a floating tensor, got dtype {t.dtype}")
        d, F = self.W_enc.shape if self.W_enc.ndim == 2 else (None, None)
        if d is None:
            raise ValueError(f"W_enc must be 2-D (d_model, F), got shape {tuple(self.W_enc.shape)}")
        expected = {"b_enc": (F,), "W_dec": (F, d), "b_dec": (d,), "threshold": (F,)}
        for n, shape in expected.items():
            got = tuple(getattr(self, n).shape)
            if got != shape:
                raise ValueError(
                    f"{n} has shape {got} but W_enc {tuple(self.W_enc.shape)} implies {shape} "
                    "(d_model, F); was the file stored transposed?"
                )
        for n in TENSOR_NAMES:
            _check_finite(n, getattr(self, n))
        neg = (self.threshold < 0).nonzero()
        if len(neg):
            j = int(neg[0])
            raise ValueError(f"threshold[{j}] = {self.threshold[j].item()} is negative; θ ≥ 0.")
        if self.k is not None and not 1 <= int(self.k) <= F:
            raise ValueError(f"k = {self.k}: a TopK SAE keeps 1..{F} features (its width)")

    def validate(self) -> None:
        """The constructor's checks again (dtypes, shapes, finite values, θ ≥ 0), so tensors
        changed in place since construction are caught too; ValueError naming the tensor."""
        self.__post_init__()

    # -- sizes ---------------------------------------------------------------
    @property
    def width(self) -> int:
        """Number of features F."""
        return self.W_enc.shape[1]

    @property
    def d_model(self) -> int:
        """Width of the residual stream."""
        return self.W_enc.shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.W_enc.dtype

    @property
    def device(self) -> torch.device:
        return self.W_enc.device

    @property
    def foldable(self) -> bool:
        """Whether folding is defined: no TopK k, and every θ finite and > 0 (not a ReLU SAE)."""
        th = self.threshold
        return self.k is None and bool(torch.all(torch.isfinite(th) & (th > 0)))

    @property
    def is_folded(self) -> bool:
        """True when every threshold equals 1 (the folded form)."""
        return bool(torch.all(self.threshold == 1))

    # -- the SAE -------------------------------------------------------------
    def pre_activation(self, x: Tensor) -> Tensor:
        """x (..., d_model) -> x @ W_enc + b_enc, shape (..., F)."""
        return x.to(self.dtype) @ self.W_enc + self.b_enc

    def encode(self, x: Tensor) -> Tensor:
        """x (..., d_model) -> f (..., F): JumpReLU of the pre-activation (TopK: its k largest)."""
        pre = self.pre_activation(x)
        if self.k is not None:  # zero all but the k largest of each row
            vals, idx = pre.topk(int(self.k), dim=-1)
            pre = torch.zeros_like(pre).scatter_(-1, idx, vals)
        return pre * (pre > self.threshold)

    def decode(self, f: Tensor) -> Tensor:
        """f (..., F) -> x_hat (..., d_model) = f @ W_dec + b_dec."""
        return f.to(self.dtype) @ self.W_dec + self.b_dec

    def forward(self, x: Tensor) -> Tensor:
        """decode(encode(x))."""
        return self.decode(self.encode(x))

    __call__ = forward

    def fold_threshold(self) -> Tensor:
        """θ, checked for folding: every θ_j finite and > 0, else ValueError naming j."""
        if self.k is not None:
            raise ValueError(
                f"cannot fold {self.name or 'SAE'}: it is a TopK SAE (k = {self.k}), which has no "
                "threshold θ, so folding is undefined: match it with matching.fold=false"
            )
        th = self.threshold
        bad = (~torch.isfinite(th)) | (th <= 0)
        if bad.any():
            j = int(bad.nonzero()[0])
            raise ValueError(
                f"cannot fold {self.name or 'SAE'}: threshold[{j}] = {th[j].item()} (θ must be "
                "> 0). A ReLU SAE (θ = 0) has nothing to fold: match it with fold=false."
            )
        return th

    def check_foldable(self) -> Tensor:
        """θ, checked for folding: θ > 0 and finite (fold_threshold), and no folded row
        overflowing float32 in matching (θ like 1e-40 or 1e30); ValueError naming j."""
        th = self.fold_threshold()
        check_folded_scale(self.name, th, self.W_enc, self.W_dec)
        return th

    def fold(self) -> JumpReLUSAE:
        """Fold θ into the weights (eq. 4): W_enc/θ, b_enc/θ, θ·W_dec, θ' = 1.

        decode(encode(x)) is unchanged; encode's feature j is scaled by 1/θ_j.
        """
        th = self.check_foldable()
        return JumpReLUSAE(
            W_enc=self.W_enc / th,  # eq. 4
            b_enc=self.b_enc / th,
            W_dec=self.W_dec * th[:, None],
            b_dec=self.b_dec.clone(),
            threshold=torch.ones_like(th),
            name=self.name,
            meta={**self.meta, "folded": True},
        )

    def permute_features(self, perm) -> JumpReLUSAE:
        """Reorder features so new feature perm[i] is old feature i (docs/method.md §3 convention).

        With perm from match(a, b), a.permute_features(perm) lines a's features up with b's.
        """
        perm = torch.as_tensor(perm, dtype=torch.long, device=self.device)
        if perm.shape != (self.width,):
            raise ValueError(f"perm has shape {tuple(perm.shape)}, expected ({self.width},)")
        order = torch.empty_like(perm)
        order[perm] = torch.arange(self.width, device=self.device)  # new j <- old order[j]
        return JumpReLUSAE(
            W_enc=self.W_enc[:, order],
            b_enc=self.b_enc[order],
            W_dec=self.W_dec[order],
            b_dec=self.b_dec.clone(),
            threshold=self.threshold[order],
            name=self.name,
            meta=dict(self.meta),
            k=self.k,
        )

    # -- housekeeping --------------------------------------------------------
    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None):
        """A copy on another device and/or dtype."""
        kw = {k: getattr(self, k).to(device=device, dtype=dtype) for k in TENSOR_NAMES}
        return JumpReLUSAE(**kw, name=self.name, meta=dict(self.meta), k=self.k)

    def state_dict(self) -> dict[str, Tensor]:
        """The five tensors by name (Gemma Scope keys)."""
        return {k: getattr(self, k) for k in TENSOR_NAMES}

    def fingerprint(self) -> str:
        """A content hash of the five tensors (identity for caches)."""
        h = hashlib.blake2b(digest_size=16)
        for k in TENSOR_NAMES:
            t = getattr(self, k).detach().to("cpu", torch.float32).contiguous()
            h.update(k.encode())
            h.update(str(tuple(t.shape)).encode())
            h.update(t.numpy().tobytes())
        if self.k is not None:  # only TopK SAEs hash k, so every other fingerprint is unchanged
            h.update(f"k={self.k}".encode())
        return h.hexdigest()

    def __repr__(self) -> str:
        return (
            f"JumpReLUSAE(name={self.name!r}, d_model={self.d_model}, width={self.width}, "
            f"{'' if self.k is None else f'k={self.k}, '}dtype={self.dtype}, device={self.device})"
        )


# Largest squared norm of a folded weight row that the matching costs (float32 sums of squared
# differences, their int8 scales) hold with room to spare; float32 overflows at 3.4e38.
MAX_FOLDED_SQNORM = 1e30


def check_folded_scale(name: str | None, th: Tensor, W_enc: Tensor, W_dec: Tensor) -> None:
    """ValueError naming the feature when a folded row would overflow (θ like 1e-40 or 1e30).

    Bound, per feature j, from the raw weights (no folded copy):
    ‖row‖² ≤ d · max(max_i |W_enc[i, j]| / θ_j, max_k |W_dec[j, k]| · θ_j)² ≤ MAX_FOLDED_SQNORM.
    """

    def peak(w: Tensor, dim: int) -> Tensor:  # (F,) max |w| along dim, float64
        return torch.maximum(w.amax(dim).abs(), w.amin(dim).abs()).double()

    t = th.double()
    top = torch.maximum(peak(W_enc, 0) / t, peak(W_dec, 1) * t)  # (F,)
    sq = W_enc.shape[0] * top.pow(2)
    bad = ~torch.isfinite(sq) | (sq > MAX_FOLDED_SQNORM)
    if bad.any():
        j = int(bad.nonzero()[0])
        raise ValueError(
            f"cannot fold {name or 'SAE'}: threshold[{j}] = {th[j].item():.3g} makes a folded "
            f"weight row of squared norm up to {sq[j].item():.3g} (> {MAX_FOLDED_SQNORM:.0e}: "
            "float32 overflows in matching). Check the units of the SAE's thresholds, or match "
            "the raw weights with matching.fold=false"
        )


def check_compatible(a: JumpReLUSAE, b: JumpReLUSAE) -> None:
    """Raise ValueError unless a and b share d_model and width (needed for a bijection)."""
    if a.d_model != b.d_model:
        raise ValueError(
            f"SAEs live on different residual streams: d_model {a.d_model} ({a.name}) vs "
            f"{b.d_model} ({b.name})."
        )
    if a.width != b.width:
        raise ValueError(
            f"SAE widths differ: {a.width} ({a.name}) vs {b.width} ({b.name}); matching is a "
            "bijection and needs equal widths."
        )
