"""Remove secrets from configs and results before they are written or sent anywhere."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "<redacted>"

# Whole words (after splitting on _ - . and camelCase) that mark a key as secret.
_SECRET_WORDS = frozenset(
    {"password", "passwd", "secret", "token", "apikey", "credential", "credentials"}
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Env values shorter than this are too likely to occur by chance inside ordinary strings.
_MIN_ENV_SECRET_LEN = 8


def _words(key: str) -> list[str]:
    return [w for w in re.split(r"[_\-.\s]+", _CAMEL.sub("_", key).lower()) if w]


def is_secret_key(key: Any) -> bool:
    """True for keys that name a secret: api_key, apiKey, hf_token, password, *_secret, *_key.

    Matching is by whole word, so `n_tokens` or `max_tokens` are not secret but `token`,
    `access_token` and `wandb_api_key` are. Any key whose last word is `key` (and that has
    more than one word) counts as secret, which also hides harmless names like `cache_key`.
    """
    if not isinstance(key, str):
        return False
    words = _words(key)
    if any(w in _SECRET_WORDS for w in words):
        return True
    if "api" in words and "key" in words:
        return True
    return len(words) > 1 and words[-1] == "key"


def _env_secrets() -> list[str]:
    """Values of secret-looking environment variables (WANDB_API_KEY, HF_TOKEN, ...)."""
    return sorted(
        (v for k, v in os.environ.items() if is_secret_key(k) and len(v) >= _MIN_ENV_SECRET_LEN),
        key=len,
        reverse=True,
    )


def redact(obj: Any, *, env_values: list[str] | None = None) -> Any:
    """Return a copy of a nested dict/list with secret values replaced by "<redacted>".

    A value is replaced when its key is secret (`is_secret_key`); any string that contains
    the value of a secret-looking environment variable has that substring replaced too.
    The input is not modified.
    """
    env = _env_secrets() if env_values is None else env_values
    if isinstance(obj, Mapping):
        return {
            k: (REDACTED if is_secret_key(k) else redact(v, env_values=env)) for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        out = [redact(v, env_values=env) for v in obj]
        return out if isinstance(obj, list) else tuple(out)
    if isinstance(obj, str):
        for secret in env:
            obj = obj.replace(secret, REDACTED)
        return obj
    return obj
