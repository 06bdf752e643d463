"""The judge interface, its counters, and the shared machinery of cached chat-model judges."""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from typing import Any

from saematch.judge.cache import JudgeCache, cache_key
from saematch.judge.parse import parse_label
from saematch.judge.prompt import SYSTEM_PROMPT, format_user_message

Pair = tuple[str, str]


@dataclass(frozen=True)
class JudgeResult:
    """One verdict: label 1 DIFFERENT / 2 MAYBE / 3 SAME (None: unreadable), raw answer text."""

    label: int | None
    raw: str
    cached: bool = False


@dataclass
class JudgeCounters:
    """Running counts of one judge (thread-safe through `add`)."""

    calls: int = 0  # answers obtained from the model (not from the cache)
    cache_hits: int = 0
    requests: int = 0  # HTTP attempts, retries included (OpenAI-compatible judge only)
    retries: int = 0
    failures: int = 0  # calls that failed after every retry
    unparsed: int = 0  # answers with no readable label
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: int) -> None:
        """Increase counters by `deltas`."""
        with self._lock:
            for k, v in deltas.items():
                setattr(self, k, getattr(self, k) + v)

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_lock"}


class JudgeCallError(RuntimeError):
    """Some judge calls failed after all retries; the finished ones are already cached."""


class Judge(ABC):
    """Compares two feature descriptions; `judge_many` evaluates a list of pairs."""

    def __init__(self) -> None:
        self.counters = JudgeCounters()

    @abstractmethod
    def judge(self, desc_a: str, desc_b: str) -> JudgeResult:
        """Label the pair (desc_a, desc_b)."""

    def judge_many(self, pairs: Iterable[Pair]) -> list[JudgeResult]:
        """Label every pair, in order."""
        return [self.judge(a, b) for a, b in pairs]


class ChatJudge(Judge):
    """A chat model judging with the paper's system prompt, behind the on-disk cache.

    Subclasses implement `_complete(user) -> (raw_text, usage)`. Identical pairs in one
    `judge_many` call are asked once; misses run on up to `max_concurrency` threads.
    """

    def __init__(
        self,
        cache_model: str,
        cache_dir: str | os.PathLike | None = None,
        max_concurrency: int = 1,
        system_prompt: str = SYSTEM_PROMPT,
    ):
        super().__init__()
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.cache_model, self.system_prompt = cache_model, system_prompt
        self.cache = JudgeCache(cache_model, cache_dir)
        self.max_concurrency = max_concurrency
        self._slots = threading.BoundedSemaphore(max_concurrency)

    @abstractmethod
    def _complete(self, user: str) -> tuple[str, dict[str, Any]]:
        """Ask the model once; return its text and token usage."""

    def _result(self, raw: str, cached: bool) -> JudgeResult:
        label = parse_label(raw)
        if label is None:
            self.counters.add(unparsed=1)
        return JudgeResult(label, raw, cached)

    def _ask(self, key: str, user: str) -> str:
        with self._slots:
            try:
                raw, usage = self._complete(user)
            except Exception:
                self.counters.add(failures=1)
                raise
        self.cache.put(key, user, raw, usage)  # cached before anything else can fail
        self.counters.add(
            calls=1,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )
        return raw

    def judge(self, desc_a: str, desc_b: str) -> JudgeResult:
        """Label one pair (cache first)."""
        return self.judge_many([(desc_a, desc_b)])[0]

    def judge_many(self, pairs: Iterable[Pair]) -> list[JudgeResult]:
        """Label every pair: cache hits first, then the misses concurrently.

        On a failure the calls not yet started are cancelled, running ones finish (and are
        cached), and JudgeCallError is raised; rerunning resumes with the missing pairs.
        """
        users = [format_user_message(a, b) for a, b in pairs]
        keys = [cache_key(self.cache_model, self.system_prompt, u) for u in users]
        results: list[JudgeResult | None] = [None] * len(users)
        todo: dict[str, tuple[str, list[int]]] = {}
        for i, (k, u) in enumerate(zip(keys, users, strict=True)):
            if k in todo:
                todo[k][1].append(i)
            elif (hit := self.cache.get(k)) is not None:
                self.counters.add(cache_hits=1)
                results[i] = self._result(str(hit["raw"]), cached=True)
            else:
                todo[k] = (u, [i])
        errors: list[BaseException] = []
        if todo:
            workers = min(self.max_concurrency, len(todo))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(self._ask, k, u): k for k, (u, _) in todo.items()}
                for fut in as_completed(futures):
                    if fut.cancelled():
                        continue
                    try:
                        raw = fut.result()
                    except Exception as e:  # report after the others finish
                        errors.append(e)
                        for other in futures:
                            other.cancel()
                        continue
                    for i in todo[futures[fut]][1]:
                        results[i] = self._result(raw, cached=False)
        if errors:
            done = sum(r is not None for r in results)
            raise JudgeCallError(
                f"{len(errors)} judge call(s) to {self.cache_model} failed after retries "
                f"({errors[0]}); {done} of {len(users)} pairs are answered and cached in "
                f"{self.cache.folder}: rerun to resume with the rest"
            ) from errors[0]
        return results  # type: ignore[return-value]
