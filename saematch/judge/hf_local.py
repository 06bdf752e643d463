"""Judge with a local instruct model through transformers (chat template, greedy decoding)."""

from __future__ import annotations

import os
import threading
from typing import Any

from saematch.judge.base import ChatJudge


class HFLocalJudge(ChatJudge):
    """A local chat model with the paper's prompt; same parser and cache as `OpenAIJudge`.

    Templates without a system role (e.g. Gemma's) get the system prompt prepended to the
    user turn. The cache model id is `hf_local:<name>:max_new_tokens=<n>`. `model` and
    `tokenizer` objects may be passed instead of loading `model_name_or_path`.
    """

    def __init__(
        self,
        model_name_or_path: str,
        device: str = "cpu",
        dtype: str = "auto",
        max_new_tokens: int = 256,
        cache_dir: str | os.PathLike | None = None,
        trust_remote_code: bool = False,
        model: Any = None,
        tokenizer: Any = None,
    ):
        super().__init__(
            f"hf_local:{model_name_or_path}:max_new_tokens={max_new_tokens}",
            cache_dir=cache_dir,
            max_concurrency=1,  # one generate() at a time on one model
        )
        self.name, self.device, self.dtype = model_name_or_path, device, dtype
        self.max_new_tokens, self.trust_remote_code = max_new_tokens, trust_remote_code
        self._model, self._tokenizer = model, tokenizer
        self._load_lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._model is None or self._tokenizer is None:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer

                dtype = self.dtype if self.dtype == "auto" else getattr(torch, self.dtype)
                self._tokenizer = self._tokenizer or AutoTokenizer.from_pretrained(
                    self.name, trust_remote_code=self.trust_remote_code
                )
                self._model = self._model or AutoModelForCausalLM.from_pretrained(
                    self.name, dtype=dtype, trust_remote_code=self.trust_remote_code
                ).to(self.device)
                self._model.eval()
            if not getattr(self._tokenizer, "chat_template", None):
                raise ValueError(
                    f"{self.name} has no chat template: HFLocalJudge needs an instruct model"
                )
        return self._model, self._tokenizer

    def _prompt_text(self, tokenizer: Any, user: str) -> str:
        chat = [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": user},
        ]
        try:
            return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        except Exception:  # template without a system role: fold it into the user turn
            merged = [{"role": "user", "content": f"{self.system_prompt}\n\n{user}"}]
            return tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)

    def _complete(self, user: str) -> tuple[str, dict[str, Any]]:
        import torch

        model, tok = self._load()
        text = self._prompt_text(tok, user)
        enc = tok(text, return_tensors="pt", add_special_tokens=False).to(model.device)
        n_in = enc["input_ids"].shape[1]
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            )
        new = out[0, n_in:]  # (n_new,)
        raw = tok.decode(new, skip_special_tokens=True)
        return raw, {"prompt_tokens": n_in, "completion_tokens": int(new.shape[0])}

    def __repr__(self) -> str:
        return f"HFLocalJudge({self.name!r}, device={self.device!r})"
