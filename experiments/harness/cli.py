"""The `saematch` command, and the skeleton every experiment runs in.

    check the config and the experiment's options (before any work; dry_run stops here)
    -> build the Context -> open the recorder -> opts, ctx -> experiment.run -> Results
    -> write tables, figures, texts, match files, metrics, provenance -> results.json

An experiment is only `run(opts, ctx) -> Results` (experiments/harness/results.py); nothing here is
repeated in the experiment modules.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from saematch.atomic import umask_mode
from saematch_experiments.harness.config_location import CONFIG_PATH
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.preflight import preflight
from saematch_experiments.harness.recording import make_recorder, provenance
from saematch_experiments.harness.registry import check_config, get
from saematch_experiments.harness.results import Results, as_row, save_matchings
from saematch_experiments.harness.run_folder import remove_if_empty, write_hydra_files
from saematch_experiments.harness.schema import RUN_ID, register_schemas

CLAIM = ".saematch-run"  # created with O_EXCL by the run that owns the folder


def run_dir_of(cfg: DictConfig) -> Path:
    """The Hydra run dir when under Hydra, else outputs/<experiment>/<time>_<run id>."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    return Path(cfg.paths.output_root) / cfg.experiment.name / f"{stamp}_{RUN_ID}"


def claim(run_dir: Path) -> Path:
    """Make run_dir this run's own: atomically create its marker file, or refuse the folder.

    Two runs can never share a folder (their results.json and metrics.jsonl would mix)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(run_dir / CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY, umask_mode())
    except FileExistsError:
        raise FileExistsError(
            f"run folder {run_dir} already holds another run ({CLAIM} exists); nothing was "
            "written. Pick a new folder (hydra.run.dir=...) or delete that run first"
        ) from None
    os.write(fd, f"{os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
    os.close(fd)
    return run_dir


def run_experiment(
    cfg: DictConfig, run_dir: Path | str | None = None, console: bool = False
) -> dict:
    """Validate, run the experiment of cfg.experiment.name, record it; returns its summary.

    console=True (the command) prints the headline table and where the files are."""
    opts = check_config(cfg)  # fail fast on a typo, before loading anything
    exp = get(cfg.experiment.name)
    preflight(cfg)  # bad values (sizes, layers, corpus files), still before any work
    if cfg.dry_run:
        print(OmegaConf.to_yaml(cfg))
        return {"dry_run": True}
    folder = claim(Path(run_dir) if run_dir else run_dir_of(cfg))
    if run_dir is None and HydraConfig.initialized():
        write_hydra_files(cfg, folder)  # only now that the folder is this run's
    ctx = Context(cfg, folder)
    with make_recorder(cfg, ctx.run_dir) as rec:
        if len(ctx.layers) < exp.min_layers:
            raise ValueError(
                f"{exp.name} needs at least {exp.min_layers} layers, the SAE set has "
                f"{ctx.layers}; widen saes.layers"
            )
        res = exp.run(opts, ctx)
        if not isinstance(res, Results):
            raise TypeError(f"experiments/{exp.name}.py: run must return Results")
        if cfg.explorer and exp.name != "explorer":  # the page beside the run's files
            from saematch_experiments.explorer import write_for_run

            res.summary["explorer"] = write_for_run(ctx).name
        if console:
            print(res.console or headline_table(exp.name, res.headline), flush=True)
        out = record(ctx, rec, res)
    if console:
        print(
            f"files: {ctx.run_dir} (results.json, {len(res.tables)} CSV, "
            f"{len(res.figures)} figure{'s' * (len(res.figures) != 1)} as PNG + PDF)",
            flush=True,
        )
    return out


def headline_table(name: str, rows: list, max_cols: int = 7) -> str:
    """The console summary: one line per headline row, numbers to 4 significant digits."""
    rows = [{k: v for k, v in as_row(r).items() if isinstance(v, int | float | str)} for r in rows]
    if not rows:
        return f"{name}: done"
    cols = list(dict.fromkeys(k for r in rows for k in r))[:max_cols]
    cell = lambda v: "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    grid = [cols] + [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(cols))]
    lines = ["  ".join(x.rjust(w) for x, w in zip(line, widths, strict=True)) for line in grid]
    return "\n".join([f"{name}:", *lines])


def record(ctx: Context, rec, res: Results) -> dict:
    """Write everything in `res` through the recorder; results.json last."""
    for row in res.metrics:
        rec.log_metrics(as_row(row))
    for name, (rows, history) in res.tables.items():
        rec.add_table(name, [as_row(r) for r in rows], as_history=history)
    for name, fig in res.figures.items():
        rec.add_figure(name, fig)
    for name, text in res.texts.items():
        (ctx.run_dir / name).write_text(text)
        rec.add_artifact(name.replace(".", "_"), ctx.run_dir / name, type="text")
    for name, ms in res.matchings.items():
        save_matchings(ctx.run_dir, name, ctx.layers, ms)
    if res.matchings:
        rec.add_artifact("matchings", ctx.run_dir / "matchings", type="matchings")
    summary = {**res.summary, "sae_set": ctx.sae_set.to_dict(), "provenance": provenance()}
    if res.error is None:
        rec.finish(summary)
        return summary
    rec.finish(summary, status="partial", error=str(summary.get("error") or res.error))
    raise res.error


# Third-party loggers that print INFO lines nobody asked for (fontTools: one per PDF font
# subset, ~110 a run); the command shows progress, the headline table and the folder only.
QUIET_LOGGERS = ("fontTools", "matplotlib", "PIL", "urllib3", "httpx", "filelock", "datasets")


def quiet_third_party() -> None:
    """Raise noisy third-party loggers to WARNING (Hydra sets the root logger to INFO)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")
def _hydra_main(cfg: DictConfig) -> dict:
    quiet_third_party()
    try:
        return run_experiment(cfg, console=True)
    finally:  # Hydra made the folder before the run could claim it
        remove_if_empty(Path(HydraConfig.get().runtime.output_dir))


def main() -> None:
    """Console entry point."""
    register_schemas()
    _hydra_main()


if __name__ == "__main__":
    main()
