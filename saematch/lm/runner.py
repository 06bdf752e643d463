"""A Hugging Face causal LM with resid_post capture and resumption from any block.

Any decoder-only causal LM whose stack saematch.lm.arch finds (Llama, Mistral, Qwen 2, Gemma 1-3,
GPT-2, GPT-NeoX/Pythia). resid_post of block l is the decoder layer's output, `layers[l]`. It equals
Hugging Face's `hidden_states[l + 1]` for l < n_layers − 1. For the last block it does
NOT: in transformers 5 `hidden_states[-1]` is the *final-normed* state (checked for
Gemma2 and Llama, tests/test_lm.py); `resid_post` returns the un-normed block output.
Position ids are 0..T−1 as in the model's plain forward, so pad on the right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
import transformers
from torch import Tensor, nn

from saematch.lm.arch import decoder_stack
from saematch.lm.loss import chunks, token_ce
from saematch.lm.sites import capture_sites

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
EAGER_MODEL_TYPES = ("gemma2",)  # no SDPA support in transformers 5 (MEASURED.md)
_LAYERS_RETURN_TUPLE = int(transformers.__version__.split(".")[0]) < 5
# Causal LMs whose head is exactly lm_head(norm(h)) then optional final-logit softcapping;
# for these we apply the head ourselves (in-place softcap: ~40 % cheaper on CPU). Others
# go through the model's own forward.
_PLAIN_HEAD = ("Gemma2ForCausalLM", "GemmaForCausalLM", "LlamaForCausalLM", "MistralForCausalLM",
               "Qwen2ForCausalLM")  # fmt: skip


class _StopForwardSignal(Exception):  # noqa: N818
    """Raised in a hook after the last requested layer to skip the rest of the forward."""


class _PassThrough(nn.Module):
    """Stands in for a decoder layer that must not run: returns its input unchanged."""

    def __init__(self, like: nn.Module):
        super().__init__()
        if hasattr(like, "attention_type"):  # some models pick masks by layer attribute
            self.attention_type = like.attention_type

    def forward(self, hidden_states: Tensor, *args, **kwargs):
        return (hidden_states,) if _LAYERS_RETURN_TUPLE else hidden_states


def _first(o):
    return o[0] if isinstance(o, tuple) else o


class LanguageModel:
    """A causal LM (Gemma2ForCausalLM, LlamaForCausalLM, GPT2LMHeadModel, …) in eval mode."""

    def __init__(self, model: nn.Module, tokenizer=None):
        self.model = model.eval()
        self._tokenizer = tokenizer
        stack = decoder_stack(model)
        self.base = stack.base  # the decoder stack (embeddings, layers, final norm)
        self.layers = stack.layers
        self._positions = stack.positions  # GPT-2's wpe: zeroed while resuming (_skipping)
        self._plain_head = type(model).__name__ in _PLAIN_HEAD
        self.loss_chunk_tokens = 256  # tokens per lm_head chunk in the loss paths

    @classmethod
    def load(
        cls,
        name: str,
        *,
        dtype: str = "float32",
        device: str | torch.device = "cpu",
        trust_remote_code: bool = False,
        revision: str | None = None,
        attn_implementation: str | None = None,
        tokenizer=None,
    ) -> LanguageModel:
        """Load model + tokenizer of `name` (a hub id or a local folder) with
        AutoModelForCausalLM / AutoTokenizer (Gemma 2: eager attention). trust_remote_code stays
        off unless asked for: it runs the repository's own Python."""
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        hub = {"trust_remote_code": trust_remote_code, "revision": revision}
        config = AutoConfig.from_pretrained(name, **hub)
        if attn_implementation is None and config.model_type in EAGER_MODEL_TYPES:
            attn_implementation = "eager"
        model = AutoModelForCausalLM.from_pretrained(
            name, dtype=DTYPES[dtype], attn_implementation=attn_implementation, **hub
        ).to(device)
        if tokenizer is None or isinstance(tokenizer, str):
            tokenizer = AutoTokenizer.from_pretrained(tokenizer or name, **hub)
        return cls(model, tokenizer)

    # -- properties ------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def d_model(self) -> int:
        return self.model.config.get_text_config().hidden_size

    @property
    def tokenizer(self):
        return self._tokenizer

    @property
    def bos_token_id(self) -> int | None:
        tok = self._tokenizer
        if tok is not None and tok.bos_token_id is not None:
            return tok.bos_token_id
        return getattr(self.model.config, "bos_token_id", None)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    # -- forward passes --------------------------------------------------------
    def _check_layer(self, layer: int, allow_embed: bool = False) -> int:
        lo = -1 if allow_embed else 0
        if not lo <= layer < self.n_layers:
            raise ValueError(f"layer {layer} out of range [{lo}, {self.n_layers - 1}]")
        return layer

    def _head(self, h: Tensor) -> Tensor:
        """Final-normed hidden (..., d) -> logits (..., V): lm_head, then Gemma 2's softcap."""
        logits = self.model.lm_head(h)
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        if cap is not None:  # cap · tanh(logits / cap)
            logits.div_(cap).tanh_().mul_(cap)
        return logits

    def _forward(self, **kw) -> Tensor:
        """Logits (B, T, V) of the model's forward on kw (input_ids or inputs_embeds)."""
        if not self._plain_head:
            return self.model(**kw, use_cache=False).logits
        return self._head(self.base(**kw, use_cache=False).last_hidden_state)

    def _token_ce(self, targets: Tensor, **kw) -> Tensor:
        """Per-token CE (B, T) of targets (B, T) under the forward on kw; chunked head (memory)."""
        ids = targets.to(self.device)
        if not self._plain_head:
            return token_ce(self._forward(**kw), ids)
        h = self.base(**kw, use_cache=False).last_hidden_state  # (B, T, d), final norm applied
        B, T, d = h.shape
        h = h.reshape(B * T, d)
        target = torch.full_like(ids, -100)  # (B, T): the next token; none after the last
        target[:, :-1] = ids[:, 1:]
        target = target.reshape(-1)
        out = torch.empty(B * T, dtype=torch.float32, device=h.device)
        for s in chunks(B * T, self.loss_chunk_tokens):
            logits = self._head(h[s]).float()  # (chunk, V)
            out[s] = F.cross_entropy(logits, target[s], reduction="none")
        return out.view(B, T).roll(1, dims=1)  # CE predicted at j−1 -> out[:, j]; out[:, 0] = 0

    @torch.no_grad()
    def logits(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Plain full forward: logits (B, T, V)."""
        ids = input_ids.to(self.device)
        am = None if attention_mask is None else attention_mask.to(self.device)
        return self._forward(input_ids=ids, attention_mask=am)

    @torch.no_grad()
    def resid_post(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        layers: Sequence[int] | None = None,
    ) -> Tensor:
        """resid_post of the chosen blocks (default all) in one forward: (L, B, T, d).

        Forward hooks on `model.model.layers[l]` record each block's output; the pass
        stops right after the last requested block.
        """
        want = list(range(self.n_layers)) if layers is None else [int(x) for x in layers]
        for layer in want:
            self._check_layer(layer)
        if not want:
            raise ValueError("layers is empty")
        last, got = max(want), {}

        def hook(l):
            def fn(module, args, output):
                got[l] = _first(output)
                if l == last:
                    raise _StopForwardSignal

            return fn

        handles = [self.layers[l].register_forward_hook(hook(l)) for l in sorted(set(want))]
        try:
            ids = input_ids.to(self.device)
            am = None if attention_mask is None else attention_mask.to(self.device)
            self.base(input_ids=ids, attention_mask=am, use_cache=False)
        except _StopForwardSignal:
            pass
        finally:
            for h in handles:
                h.remove()
        return torch.stack([got[l] for l in want])  # (L, B, T, d)

    @torch.no_grad()
    def site_activations(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        want: Sequence[tuple[str, int]] = (),
    ) -> dict[tuple[str, int], Tensor]:
        """Activations at (site, layer) pairs (saematch.lm.sites) in one full forward: (B, T, d)."""
        if not want:
            raise ValueError("want is empty: pass (site, layer) pairs, e.g. [('mlp_out', 3)]")
        for _, layer in want:
            self._check_layer(layer)
        ids = input_ids.to(self.device)
        am = None if attention_mask is None else attention_mask.to(self.device)
        with capture_sites(self.layers, list(want)) as got:
            self.base(input_ids=ids, attention_mask=am, use_cache=False)
        return {k: v[0] for k, v in got.items()}

    @contextmanager
    def _skipping(self, n_skip: int):
        """Temporarily replace blocks 0..n_skip−1 by pass-throughs (restored on exit), and zero
        any absolute position embedding: the resumed state already holds it."""
        saved = [self.layers[i] for i in range(n_skip)]
        handle = None
        if self._positions is not None:
            zero = lambda _m, _a, out: torch.zeros_like(out)  # noqa: E731
            handle = self._positions.register_forward_hook(zero)
        try:
            for i, blk in enumerate(saved):
                self.layers[i] = _PassThrough(blk)
            yield
        finally:
            for i, blk in enumerate(saved):
                self.layers[i] = blk
            if handle is not None:
                handle.remove()

    @torch.no_grad()
    def logits_from(
        self,
        layer: int,
        resid: Tensor,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        """Logits (B, T, V) with resid_post of block `layer` set to resid (B, T, d).

        Runs only blocks layer+1..end, then the final norm, lm_head and any final logit
        softcapping. The model's own forward builds the rotary embeddings and the causal /
        sliding-window masks (it is called with inputs_embeds=resid while blocks 0..layer
        are pass-throughs, so layer indices and per-layer mask types are unchanged).
        layer = −1 replaces the embeddings output (the input to block 0).
        """
        h, am = self._resume_args(layer, resid, input_ids, attention_mask)
        with self._skipping(layer + 1):
            return self._forward(inputs_embeds=h, attention_mask=am)

    @torch.no_grad()
    def token_losses_from(
        self,
        layer: int,
        resid: Tensor,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        """Per-token CE (B, T) as token_ce(logits_from(...), input_ids), never holding (B, T, V)."""
        h, am = self._resume_args(layer, resid, input_ids, attention_mask)
        with self._skipping(layer + 1):
            return self._token_ce(input_ids, inputs_embeds=h, attention_mask=am)

    def _resume_args(self, layer, resid, input_ids, attention_mask):
        self._check_layer(layer, allow_embed=True)
        if resid.ndim != 3 or resid.shape[-1] != self.d_model:
            raise ValueError(f"resid must be (B, T, {self.d_model}), got {tuple(resid.shape)}")
        if input_ids is not None and tuple(input_ids.shape) != tuple(resid.shape[:2]):
            raise ValueError(
                f"input_ids {tuple(input_ids.shape)} and resid {tuple(resid.shape)} "
                "disagree on (B, T)"
            )
        h = resid.to(device=self.device, dtype=self.dtype)
        am = None if attention_mask is None else attention_mask.to(self.device)
        return h, am

    @torch.no_grad()
    def logits_with_replacement(
        self,
        layer: int,
        replace: Callable[[Tensor], Tensor] | Tensor,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        """Full forward with block `layer`'s output replaced by a hook (reference; slower).

        replace is a tensor (B, T, d) or a function of the true output.
        """
        self._check_layer(layer)

        def fn(module, args, output):
            new = replace(_first(output)) if callable(replace) else replace
            new = new.to(device=self.device, dtype=self.dtype)
            return (new, *output[1:]) if isinstance(output, tuple) else new

        handle = self.layers[layer].register_forward_hook(fn)
        try:
            return self.logits(input_ids, attention_mask)
        finally:
            handle.remove()

    @torch.no_grad()
    def token_losses(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        *,
        batch_size: int = 8,
    ) -> Tensor:
        """Per-token next-token CE (N, T), aligned to target positions, in chunks of batch_size."""
        out = []
        for s in chunks(input_ids.shape[0], batch_size):
            am = None if attention_mask is None else attention_mask[s]
            am = None if am is None else am.to(self.device)
            ids = input_ids[s].to(self.device)
            out.append(self._token_ce(ids, input_ids=ids, attention_mask=am).cpu())
        return torch.cat(out)

    def __repr__(self) -> str:
        return (
            f"LanguageModel({type(self.model).__name__}, n_layers={self.n_layers}, "
            f"d_model={self.d_model}, dtype={self.dtype}, device={self.device})"
        )
