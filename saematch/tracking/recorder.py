"""RunRecorder: the one object every experiment writes its outputs through.

Run folder layout (local files are always written first; W&B mirrors them second):

    run_dir/
      config.json      resolved config, secrets redacted (written at start)
      metrics.jsonl    one line per `log_metrics` call (survives a crash)
      <table>.csv      one per `add_table`
      <figure>.png/.pdf  one pair per `add_figure`
      results.json     everything above plus `finish(results)`, written atomically
      wandb/offline-run-*/  the W&B run when logger="wandb" and mode is not "disabled"
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from .results import append_jsonl, to_jsonable, write_csv, write_json_atomic
from .secrets import redact
from .wandb_logger import WandbLogger

# Tables longer than this are kept only as CSV; results.json points at the file instead.
MAX_INLINE_ROWS = 2000


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunRecorder:
    """Collect metrics, tables, figures and artifacts of one run into `run_dir` (and W&B).

    `logger="wandb"` mirrors everything to a W&B run (`wandb_kwargs`: project, entity,
    name, group, tags, mode="offline"|"online"|"disabled"; WANDB_MODE overrides mode).
    Any W&B failure is warned about, recorded under results.json["wandb"], and loses
    nothing locally. Use as a context manager so a crash still writes results.json.
    """

    def __init__(
        self,
        run_dir: Path | str,
        config: Mapping[str, Any] | None = None,
        logger: Literal["wandb", "none"] = "none",
        wandb_kwargs: Mapping[str, Any] | None = None,
    ):
        if logger not in ("wandb", "none"):
            raise ValueError(f"logger must be 'wandb' or 'none', got {logger!r}")
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config = to_jsonable(redact(dict(config or {})))
        self.metrics: list[dict[str, Any]] = []
        self.tables: dict[str, Any] = {}
        self.figures: dict[str, dict[str, str]] = {}
        self.artifacts: dict[str, dict[str, str]] = {}
        self.results_path: Path | None = None
        self._t0 = time.perf_counter()
        self._started_at = _now()
        write_json_atomic(self.run_dir / "config.json", self.config)
        self.wandb: WandbLogger | None = None
        if logger == "wandb":
            kwargs = {"project": "saematch", **redact(dict(wandb_kwargs or {}))}
            self.wandb = WandbLogger(self.run_dir, self.config, **kwargs)

    # ---- recording -------------------------------------------------------------------
    def log_metrics(self, row: Mapping[str, Any]) -> None:
        """Record one row of metrics, e.g. {"layer": 3, "delta_loss": 0.12, "ev": 0.91}."""
        row = to_jsonable(dict(row))
        self.metrics.append(row)
        append_jsonl(self.run_dir / "metrics.jsonl", row)
        if self.wandb:
            self.wandb.log(row)

    def add_table(
        self, name: str, rows: list[Mapping[str, Any]], as_history: bool | None = None
    ) -> Path:
        """Write `rows` to `<name>.csv`, keep them for results.json, log a wandb.Table.

        `as_history` (default: every row has a "layer" key) also logs each row as a W&B
        history row with keys `name/<column>` plotted against `layer`.
        """
        rows = [to_jsonable(dict(r)) for r in rows]
        path = write_csv(self.run_dir / f"{name}.csv", rows)
        if len(rows) <= MAX_INLINE_ROWS:
            self.tables[name] = rows
        else:
            self.tables[name] = {"csv": path.name, "n_rows": len(rows)}
        if self.wandb:
            if as_history is None:
                as_history = bool(rows) and all("layer" in r for r in rows)
            self.wandb.log_table(name, rows, as_history)
        return path

    def add_figure(self, name: str, fig: Any, dpi: int = 150) -> tuple[Path, Path]:
        """Save a matplotlib figure as `<name>.png` and `<name>.pdf`, close it, log it."""
        import matplotlib.pyplot as plt

        png, pdf = self.run_dir / f"{name}.png", self.run_dir / f"{name}.pdf"
        try:
            fig.savefig(png, dpi=dpi, bbox_inches="tight")
            fig.savefig(pdf, bbox_inches="tight", metadata={"CreationDate": None})
        finally:
            plt.close(fig)
        self.figures[name] = {"png": png.name, "pdf": pdf.name}
        if self.wandb:
            self.wandb.log_image(name, png)
        return png, pdf

    def add_artifact(self, name: str, path: Path | str, type: str) -> None:
        """Register a file or folder (e.g. the matchings) as an output; W&B gets an Artifact."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"artifact {name!r}: {path} does not exist; write it first")
        try:
            shown = str(path.resolve().relative_to(self.run_dir.resolve()))
        except ValueError:
            shown = str(path.resolve())
        self.artifacts[name] = {"path": shown, "type": type}
        if self.wandb:
            self.wandb.log_artifact(name, path, type)

    # ---- finishing -------------------------------------------------------------------
    def _payload(self, results: Mapping[str, Any], status: str, error: str | None) -> dict:
        return {
            "status": status,
            "error": redact(error),
            "started_at": self._started_at,
            "finished_at": _now(),
            "duration_s": round(time.perf_counter() - self._t0, 3),
            "config": self.config,
            "results": results,
            "metrics": self.metrics,
            "tables": self.tables,
            "figures": self.figures,
            "artifacts": self.artifacts,
            "wandb": self.wandb.status() if self.wandb else {"mode": "none", "ok": True},
        }

    def finish(
        self,
        results: Mapping[str, Any] | None = None,
        status: str = "ok",
        error: str | None = None,
    ) -> Path:
        """Write results.json (atomically, secrets redacted), then close W&B; return its path.

        If closing W&B fails, results.json is rewritten with the failure recorded.
        """
        clean = to_jsonable(redact(dict(results or {})))
        path = write_json_atomic(self.run_dir / "results.json", self._payload(clean, status, error))
        self.results_path = path
        if self.wandb:
            n_errors = len(self.wandb.errors)
            self.wandb.finish(clean, exit_code=0 if status == "ok" else 1)
            if len(self.wandb.errors) != n_errors:
                write_json_atomic(path, self._payload(clean, status, error))
        return path

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.results_path is None:
            if exc is None:
                self.finish({})
            else:
                self.finish({}, status="failed", error=f"{exc_type.__name__}: {exc}")
