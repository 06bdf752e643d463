"""Small JSON-over-HTTP client (stdlib urllib) with timeouts, retries, backoff and rate limits.

Shared by the Neuronpedia client and the OpenAI-compatible judge. Retries on HTTP 408/409/425/
429 and every 5xx, on connection errors and on timeouts, waiting `Retry-After` when the server
sends it, else `backoff_base * 2**attempt` seconds (both capped at `backoff_max`).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RETRY_STATUSES = frozenset({408, 409, 425, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: `max_retries` retries after the first attempt."""

    max_retries: int = 5
    backoff_base: float = 1.0  # seconds; wait = backoff_base * 2**attempt
    backoff_max: float = 60.0  # seconds; caps both the exponential wait and Retry-After

    def wait(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to sleep before retry number `attempt` (0-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.backoff_max)
        return min(self.backoff_base * 2**attempt, self.backoff_max)


class HTTPStatusError(RuntimeError):
    """A non-retryable HTTP status (or a retryable one after all retries)."""

    def __init__(self, status: int, url: str, body: str):
        self.status, self.url, self.body = status, url, body
        super().__init__(f"HTTP {status} from {url}: {body[:500]}")


class RequestFailedError(RuntimeError):
    """A request that still failed after every retry (the last cause is chained)."""


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` header (seconds or an HTTP date) -> seconds, or None if absent/invalid."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


class RateLimiter:
    """At most `max_per_s` acquisitions per second across threads (None or <= 0: unlimited)."""

    def __init__(self, max_per_s: float | None):
        self.interval = 1.0 / max_per_s if max_per_s and max_per_s > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until the next request may start."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


def _redact(text: str, secrets: Iterable[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def request_json(
    method: str,
    url: str,
    *,
    payload: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    retry: RetryPolicy | None = None,
    secrets: Iterable[str] = (),
    limiter: RateLimiter | None = None,
    on_event: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Send a JSON request and return the decoded JSON body, retrying transient failures.

    `secrets` are redacted from every error message. `on_event` is called with "request"
    before each attempt and "retry" before each retry. Raises HTTPStatusError on a
    non-retryable status, RequestFailedError after the last retry.
    """
    retry = retry or RetryPolicy()
    secrets = tuple(secrets)
    data = None if payload is None else json.dumps(payload).encode()
    hdrs = {"Accept": "application/json", **(headers or {})}
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    last: BaseException | None = None
    retry_after: float | None = None
    for attempt in range(retry.max_retries + 1):
        if attempt:
            if on_event:
                on_event("retry")
            sleep(retry.wait(attempt - 1, retry_after))
        retry_after = None
        if limiter:
            limiter.acquire()
        if on_event:
            on_event("request")
        req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as e:
            text = _redact(e.read().decode("utf-8", "replace"), secrets)
            err = HTTPStatusError(e.code, url, text)
            if e.code not in RETRY_STATUSES and e.code < 500:
                raise err from None
            last, retry_after = err, parse_retry_after(e.headers.get("Retry-After"))
            continue
        except (
            urllib.error.URLError,
            TimeoutError,
            ConnectionError,
            http.client.HTTPException,
        ) as e:
            last = RuntimeError(_redact(f"{type(e).__name__}: {e}", secrets))
            continue
        try:
            return json.loads(body)
        except ValueError as e:
            raise ValueError(f"{url} returned a body that is not JSON: {body[:200]!r}") from e
    raise RequestFailedError(
        f"{method} {url} failed after {retry.max_retries + 1} attempts; last error: {last}"
    ) from last
