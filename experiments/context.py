"""Builds library objects from a composed config, lazily: experiments pay only for what they use."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from experiments.registry import checked_options


def plain(node: Any) -> Any:
    """A config node as plain Python (enums as strings)."""
    if isinstance(node, DictConfig) or OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True, enum_to_str=True)
    return node


def run_dir_of(cfg: DictConfig) -> Path:
    """The Hydra run dir when under Hydra, else outputs/<experiment>/manual."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.paths.output_root) / cfg.experiment.name / "manual"


@dataclass
class Context:
    """Everything an experiment needs, built on first use from `cfg`."""

    cfg: DictConfig
    run_dir: Path | None = None
    _matchings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir or run_dir_of(self.cfg))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.options = checked_options(self.cfg)

    # -- where things live ---------------------------------------------------
    @cached_property
    def cache_dir(self) -> Path:
        return Path(self.cfg.paths.cache_dir).expanduser()

    @cached_property
    def zoo(self):
        """The built-in zoo (built on first use)."""
        from saematch.zoo import ensure_zoo

        size = self.cfg.model.zoo_size
        return ensure_zoo(size=size, cache_dir=self.cache_dir, seed=int(self.cfg.seed))

    @cached_property
    def planted(self):
        """The planted world's SAE set and truth (saes=planted; built on first use)."""
        from saematch.planted import ensure_planted

        s = self.cfg.saes
        if plain(s.kind) != "planted":
            raise ValueError("this experiment needs the planted world: run it with saes=planted")
        knobs = plain(s.knobs) or {}
        return ensure_planted(
            size=s.size, cache_dir=self.cache_dir, seed=int(self.cfg.seed), **knobs
        )

    # -- model and data ------------------------------------------------------
    @cached_property
    def lm(self):
        from saematch.lm import LanguageModel

        if plain(self.cfg.saes.kind) == "planted":
            raise ValueError(
                f"experiment {self.cfg.experiment.name!r} runs a language model, and the planted "
                "world has none (its activations come from a generator, so ΔL is not defined "
                "there). On saes=planted run experiment=ground_truth or a weight-only experiment "
                "(mse_curves); for this one use saes=tiny."
            )

        m = self.cfg.model
        path = str(self.zoo.model_dir) if plain(m.kind) == "zoo" else m.name_or_path
        return LanguageModel.load(path, dtype=m.dtype, device=m.device)

    @cached_property
    def batch(self):
        """The token batch of cfg.data (N x T, BOS first, metric mask without BOS)."""
        from saematch.data import load_texts, make_batch

        d = self.cfg.data
        texts = load_texts(
            plain(d.source),
            split=d.split,
            path=d.path,
            text_key=d.text_key,
            n_docs=max(4 * int(d.n_examples), 64),
            seed=int(d.seed),
        )
        return make_batch(
            texts,
            self.lm.tokenizer,
            n_examples=int(d.n_examples),
            seq_len=int(d.seq_len),
            seed=int(d.seed),
        )

    # -- SAEs ----------------------------------------------------------------
    @cached_property
    def sae_set(self):
        from experiments.sae_sets import build_sae_set

        return build_sae_set(self.cfg, self)

    @property
    def layers(self) -> list[int]:
        return self.sae_set.layers

    @cached_property
    def saes(self) -> list:
        """One JumpReLUSAE per layer of `layers`, on the model's device."""
        by_layer = self.sae_set.load_all(device=self.cfg.model.device)  # {layer: SAE}
        return [by_layer[L] for L in self.layers]

    def matchings(
        self,
        *,
        mode: str | None = None,
        fold: bool | None = None,
        solver: str | None = None,
        saes: list | None = None,
    ) -> list:
        """Matchings of every adjacent pair of `saes` (default: the set), cached on disk."""
        from saematch.matching import match_layers

        mc = self.cfg.matching
        mode = mode or plain(mc.mode)
        fold = bool(mc.fold) if fold is None else fold
        solver = solver or plain(mc.solver)
        saes = self.saes if saes is None else saes
        key = (mode, fold, solver, tuple(id(s) for s in saes))
        if key not in self._matchings:
            cache = self.cache_dir / "matchings" if mc.cache else None
            self._matchings[key] = match_layers(
                [s.to("cpu") for s in saes],
                mode=mode,
                fold=fold,
                solver=solver,
                cache_dir=cache,
            )
        return self._matchings[key]

    # -- descriptions and judge ----------------------------------------------
    def descriptions(self, layer: int):
        """The DescriptionSource of the SAE at `layer` (cfg.descriptions)."""
        from saematch.descriptions import DictDescriptions, build_descriptions

        d = self.cfg.descriptions
        kind = plain(d.kind)
        if kind == "zoo":
            return DictDescriptions(
                self.zoo.descriptions(layer, self.cfg.saes.sparsity), name=f"zoo layer {layer}"
            )
        if kind == "json":
            return build_descriptions("json", path=d.path.format(layer=layer))
        kw = {"model": d.model, "source": d.source.format(layer=layer)}
        if kind == "export":
            kw["root"] = d.root
        else:
            kw["cache_dir"] = self.cache_dir / "neuronpedia"
        return build_descriptions(kind, **kw)

    @cached_property
    def judge(self):
        """The judge of cfg.judge; answers cached under the cache dir."""
        from saematch.judge import build_judge

        j = plain(self.cfg.judge)
        return build_judge(j.pop("kind"), cache_dir=self.cache_dir / "judge", **j)

    # -- outputs -------------------------------------------------------------
    @cached_property
    def recorder(self):
        from experiments.recording import make_recorder

        return make_recorder(self.cfg, self.run_dir)
