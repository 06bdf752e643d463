"""Weights & Biases, behind a guard: every call is caught, warned about and recorded.

The mode is `wandb_kwargs["mode"]` ("offline" by default), **overridden by the WANDB_MODE
environment variable when it is set**, so a shell or CI (the test suite sets
WANDB_MODE=disabled) can switch tracking without touching configs. In "disabled" mode
wandb is never imported or initialised and no `wandb/` folder is written. An "online" run
whose server does not answer within seconds (reachable.py) logs offline, saying so in one
warning line and in status()["fallback"].
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .reachable import unreachable, wandb_base_url
from .results import table_columns, to_jsonable
from .wandb_reader import wait_for_exit

MODES = ("online", "offline", "disabled")
INIT_TIMEOUT_S = 30  # W&B's default is 90 s; a server that answered the check is faster
log = logging.getLogger(__name__)
_LEGACY_MODES = {"dryrun": "offline", "run": "online"}


def resolve_mode(configured: str | None) -> str:
    """The W&B mode to use: WANDB_MODE if set, else the configured one, else "offline"."""
    mode = os.environ.get("WANDB_MODE") or configured or "offline"
    return _LEGACY_MODES.get(mode, mode)


def artifact_name(name: str) -> str:
    """A W&B-legal artifact name (letters, digits, '-', '_', '.')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "artifact"


class WandbLogger:
    """A W&B run whose failures never propagate: the first failure turns it off.

    `status()` says what happened: {"mode", "ok", "error", "errors", "run_id", "dir"}.
    """

    def __init__(self, run_dir: Path, config: Mapping[str, Any], **wandb_kwargs: Any):
        self.mode = resolve_mode(wandb_kwargs.pop("mode", None))
        self.run_dir = Path(run_dir)
        self.run = None
        self.errors: list[str] = []
        self.fallback: str | None = None  # why an online run logs offline
        if self.mode == "disabled":
            return
        if self.mode not in MODES:
            self._fail("init", ValueError(f"W&B mode {self.mode!r} is not one of {MODES}"))
            return
        # wandb's own "wandb: ..." lines (e.g. per artifact) follow WANDB_SILENT, not the run's
        # settings; quiet unless the user asked otherwise (WANDB_SILENT=false).
        os.environ.setdefault("WANDB_SILENT", "true")
        if self.mode == "online":
            why = unreachable(wandb_base_url())
            if why is not None:
                self._go_offline(f"{wandb_base_url()} does not answer ({why})")
        try:
            self.run = self._init(config, wandb_kwargs)
        except Exception as e:  # noqa: BLE001 - any W&B failure must not stop the run
            if self.mode != "online":
                self._fail("init", e)
                return
            self._go_offline(f"online init failed ({type(e).__name__}: {e})")
            try:
                self.run = self._init(config, wandb_kwargs)
            except Exception as e2:  # noqa: BLE001
                self._fail("init", e2)

    def _init(self, config: Mapping[str, Any], wandb_kwargs: dict):
        """wandb.init in self.mode, quiet, giving up after INIT_TIMEOUT_S."""
        import wandb

        settings = wandb_kwargs.get("settings") or wandb.Settings(
            silent=True, console="off", disable_git=True, save_code=False,
            x_disable_stats=True, x_save_requirements=False, init_timeout=INIT_TIMEOUT_S,
        )  # fmt: skip
        kwargs = {k: v for k, v in wandb_kwargs.items() if k != "settings"}
        return wandb.init(
            dir=str(self.run_dir),
            config=dict(config),
            mode=self.mode,
            settings=settings,
            reinit="create_new",
            **kwargs,
        )

    def _go_offline(self, why: str) -> None:
        """Log offline instead of online, saying so in one line (and in status())."""
        self.mode = "offline"
        self.fallback = f"W&B online: {why}; logging offline instead (upload later: wandb sync)"
        log.warning("%s", self.fallback)

    @property
    def active(self) -> bool:
        """True while a W&B run is live and nothing has failed."""
        return self.run is not None and not self.errors

    def _fail(self, what: str, err: BaseException) -> None:
        msg = f"W&B {what} failed: {type(err).__name__}: {err}"
        self.errors.append(msg)
        warnings.warn(
            f"{msg}. Local files are unaffected; W&B logging is off for the rest of this run. "
            "Use WANDB_MODE=offline to keep W&B off the network, or disabled to skip it.",
            RuntimeWarning,
            stacklevel=3,
        )

    def _call(self, what: str, fn, *args, **kwargs) -> None:
        if not self.active:
            return
        try:
            fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            self._fail(what, e)

    def log(self, row: Mapping[str, Any]) -> None:
        """One history row (numbers; a `layer` key makes it a per-layer row)."""
        self._call("log", lambda: self.run.log(to_jsonable(dict(row))))

    def log_table(self, name: str, rows: list[Mapping[str, Any]], as_history: bool) -> None:
        """`rows` as a wandb.Table and, if `as_history`, one history row per table row.

        History keys are `name/<column>` plotted against the `layer` column (define_metric).
        """

        def go() -> None:
            import wandb

            rows_j = [to_jsonable(dict(r)) for r in rows]
            cols = table_columns(rows_j)
            data = [[r.get(c) for c in cols] for r in rows_j]
            if as_history:
                self.run.define_metric("layer")
                self.run.define_metric(f"{name}/*", step_metric="layer")
                for r in rows_j:
                    self.run.log({(k if k == "layer" else f"{name}/{k}"): v for k, v in r.items()})
            self.run.log({f"tables/{name}": wandb.Table(columns=cols, data=data)})

        self._call("log_table", go)

    def log_image(self, name: str, png: Path) -> None:
        """A saved figure as a wandb.Image under `figures/<name>`."""

        def go() -> None:
            import wandb

            self.run.log({f"figures/{name}": wandb.Image(str(png))})

        self._call("log_image", go)

    def log_artifact(self, name: str, path: Path, type: str) -> None:
        """A file or folder as a wandb.Artifact (uploaded on sync in offline mode)."""

        def go() -> None:
            import wandb

            art = wandb.Artifact(artifact_name(name), type=type)
            (art.add_dir if Path(path).is_dir() else art.add_file)(str(path))
            self.run.log_artifact(art)

        self._call("log_artifact", go)

    def finish(self, summary: Mapping[str, Any], exit_code: int = 0) -> None:
        """Write `summary` into the run summary and close the run."""
        self._call("summary", lambda: self.run.summary.update(to_jsonable(dict(summary))))
        if self.run is None:
            return
        try:
            sync_file = Path(self.run.settings.sync_file)
        except Exception:  # noqa: BLE001 - a stand-in run without settings
            sync_file = None
        try:
            self.run.finish(exit_code=exit_code)
        except Exception as e:  # noqa: BLE001
            self._fail("finish", e)
            return
        if sync_file is not None and sync_file.exists() and not wait_for_exit(sync_file):
            self._fail("finish", TimeoutError(f"{sync_file} has no exit record after 10 s"))

    def status(self) -> dict[str, Any]:
        """What happened with W&B, for results.json."""
        folder = getattr(self.run, "dir", None)  # <run_dir>/wandb/offline-run-*/files
        if folder:
            folder = Path(folder).parent
            with contextlib.suppress(ValueError):
                folder = folder.resolve().relative_to(self.run_dir.resolve())
        return {
            "mode": self.mode,
            "ok": not self.errors,
            "fallback": self.fallback,
            "error": self.errors[0] if self.errors else None,
            "errors": list(self.errors),
            "run_id": getattr(self.run, "id", None),
            "dir": str(folder) if folder else None,
        }
