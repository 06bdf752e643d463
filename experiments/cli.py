"""The `saematch` command, and the skeleton every experiment runs in.

    check the config and the experiment's options (before any work; dry_run stops here)
    -> build the Context -> open the recorder -> opts, ctx -> experiment.run -> Results
    -> write tables, figures, texts, match files, metrics, provenance -> results.json

An experiment is only `run(opts, ctx) -> Results` (experiments/common.py); nothing here is
repeated in the experiment modules.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from experiments.common import Results, as_row, save_matchings
from experiments.context import Context
from experiments.recording import make_recorder, provenance
from experiments.registry import check_config, get
from experiments.schema import register_schemas

log = logging.getLogger("saematch")
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def run_dir_of(cfg: DictConfig) -> Path:
    """The Hydra run dir when under Hydra, else outputs/<experiment>/<time>."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    return Path(cfg.paths.output_root) / cfg.experiment.name / stamp


def run_experiment(cfg: DictConfig, run_dir: Path | str | None = None) -> dict:
    """Validate, run the experiment of cfg.experiment.name, record it; returns its summary."""
    opts = check_config(cfg)  # fail fast on a typo, before loading anything
    exp = get(cfg.experiment.name)
    if cfg.dry_run:
        print(OmegaConf.to_yaml(cfg))
        return {"dry_run": True}
    ctx = Context(cfg, Path(run_dir) if run_dir else run_dir_of(cfg))
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    with make_recorder(cfg, ctx.run_dir) as rec:
        if len(ctx.layers) < exp.min_layers:
            raise ValueError(
                f"{exp.name} needs at least {exp.min_layers} layers, the SAE set has "
                f"{ctx.layers}; widen saes.layers"
            )
        res = exp.run(opts, ctx)
        if not isinstance(res, Results):
            raise TypeError(f"experiments/{exp.name}.py: run must return Results")
        return record(ctx, rec, res)


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


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _hydra_main(cfg: DictConfig) -> dict:
    out = run_experiment(cfg)
    if HydraConfig.initialized():
        log.info("results in %s", HydraConfig.get().runtime.output_dir)
    return out


def main() -> None:
    """Console entry point."""
    register_schemas()
    _hydra_main()


if __name__ == "__main__":
    main()
