"""Is the W&B server answering? A seconds-long check before an online run starts.

`wandb.init(mode="online")` with no network waits out its 90 s init timeout in silence; a run
asked to log online checks the server first and logs offline when it does not answer (the run
can be uploaded later with `wandb sync`).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

DEFAULT_BASE_URL = "https://api.wandb.ai"
CHECK_TIMEOUT_S = 3.0  # a server that answers at all answers within this


def wandb_base_url() -> str:
    """The server an online run talks to: WANDB_BASE_URL, else W&B's cloud."""
    return os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL


def unreachable(base_url: str, timeout: float = CHECK_TIMEOUT_S) -> str | None:
    """Why `base_url` cannot be reached (refused, no route, no DNS, no answer within timeout),
    or None when it answers with any HTTP status (an error status still means it is up)."""
    url = base_url.rstrip("/") + "/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 - the W&B server's URL
            return None
    except urllib.error.HTTPError:
        return None  # it answered
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
