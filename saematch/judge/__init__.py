"""Judges of feature-description pairs: 1 DIFFERENT, 2 MAYBE, 3 SAME (paper App. C)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from saematch.judge.base import ChatJudge, Judge, JudgeCallError, JudgeCounters, JudgeResult
from saematch.judge.cache import JudgeCache, cache_key, default_cache_dir
from saematch.judge.parse import parse_label
from saematch.judge.prompt import (
    DIFFERENT,
    LABEL_NAMES,
    MAYBE,
    SAME,
    SYSTEM_PROMPT,
    format_user_message,
)

KINDS = ("openai", "hf_local", "embedding", "lexical")


def build_judge(
    kind: str,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    max_concurrency: int = 8,
    timeout_s: float = 60.0,
    thresholds: Sequence[float] | None = None,
    cache_dir: str | os.PathLike | None = None,
    **extra: Any,
) -> Judge:
    """Make a judge by name (openai | hf_local | embedding | lexical) from `conf/judge` keys.

    Keys a kind does not use are ignored; `extra` goes to the class unchanged
    (e.g. `max_retries`, `device`, `dtype`, `max_new_tokens`, `encode`).
    """
    if kind == "openai":
        from saematch.judge.openai import OpenAIJudge

        kw: dict[str, Any] = {"model": model or "gpt-4o-mini"}
        if base_url:
            kw["base_url"] = base_url
        return OpenAIJudge(
            **kw,
            api_key_env=api_key_env,
            max_concurrency=max_concurrency,
            timeout=timeout_s,
            cache_dir=cache_dir,
            **extra,
        )
    if kind == "hf_local":
        from saematch.judge.hf_local import HFLocalJudge

        if not model:
            raise ValueError("the hf_local judge needs model=<hub id or local path>")
        return HFLocalJudge(model, cache_dir=cache_dir, **extra)
    if kind == "embedding":
        from saematch.judge.embedding import EmbeddingJudge

        if model:
            extra["model_name_or_path"] = model
        if thresholds:
            extra["thresholds"] = tuple(thresholds)
        return EmbeddingJudge(**extra)
    if kind == "lexical":
        from saematch.judge.lexical import LexicalJudge

        return LexicalJudge(tuple(thresholds), **extra) if thresholds else LexicalJudge(**extra)
    raise ValueError(f"unknown judge kind {kind!r}; choose one of {', '.join(KINDS)}")


__all__ = [
    "DIFFERENT",
    "KINDS",
    "LABEL_NAMES",
    "MAYBE",
    "SAME",
    "SYSTEM_PROMPT",
    "ChatJudge",
    "Judge",
    "JudgeCache",
    "JudgeCallError",
    "JudgeCounters",
    "JudgeResult",
    "build_judge",
    "cache_key",
    "default_cache_dir",
    "format_user_message",
    "parse_label",
]
