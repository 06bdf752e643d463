"""Judge through any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, OpenRouter)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

from saematch.descriptions.http import RetryPolicy, request_json
from saematch.judge.base import ChatJudge


class OpenAIJudge(ChatJudge):
    """`POST {base_url}/chat/completions` with [system: paper's prompt, user: the two texts].

    The API key is read from `$api_key_env` at each request and sent only as
    `Authorization: Bearer ...`; it is never stored, logged, cached or shown in errors.
    Retries 429/5xx, connection errors and timeouts with exponential backoff honouring
    `Retry-After` (`backoff_base * 2**attempt` s, at most `backoff_max`).
    """

    def __init__(
        self,
        base_url: str = "https://api.openai.com/v1",
        model: str = "gpt-4o-mini",
        api_key_env: str = "OPENAI_API_KEY",
        max_concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 5,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        cache_dir: str | os.PathLike | None = None,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
    ):
        super().__init__(model, cache_dir=cache_dir, max_concurrency=max_concurrency)
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key_env = model, api_key_env
        self.timeout, self.temperature, self.max_tokens = timeout, temperature, max_tokens
        self.retry = RetryPolicy(max_retries, backoff_base, backoff_max)
        host = urlparse(self.url).hostname or ""
        if host.endswith("openai.com") and not os.environ.get(api_key_env):
            raise ValueError(
                f"${api_key_env} is not set: export your API key in that environment variable "
                "(it is read from the environment only)"
            )

    def _count(self, event: str) -> None:
        self.counters.add(**{"requests" if event == "request" else "retries": 1})

    def _complete(self, user: str) -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": self.system_prompt},
                {"role": "user", "content": user},
            ],
        }
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        if self.max_tokens is not None:
            payload["max_tokens"] = self.max_tokens
        key = os.environ.get(self.api_key_env, "")
        body = request_json(
            "POST",
            self.url,
            payload=payload,
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=self.timeout,
            retry=self.retry,
            secrets=(key,),
            on_event=self._count,
        )
        try:
            message = body["choices"][0]["message"]
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError(
                f"{self.url} answered without choices[0].message: {body!r:.300}"
            ) from e
        return str(message.get("content") or ""), dict(body.get("usage") or {})

    def __repr__(self) -> str:
        return f"OpenAIJudge(model={self.model!r}, url={self.url!r}, key_env={self.api_key_env!r})"
