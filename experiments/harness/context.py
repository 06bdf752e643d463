"""Builds library objects from a composed config, lazily: experiments pay only for what they use.

Everything per layer is keyed by layer number: `ctx.saes[L]`, `ctx.matchings()[t]` (the
matching of t -> ctx.next_layer[t]).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from saematch_experiments.harness.config_values import plain

log = logging.getLogger(__name__)
# What Context.saes holds at once: a set bigger than this is read a pair at a time (a 16k
# Gemma Scope SAE is 302 MB, so 3 of them; the zoo's whole set is a few MB).
HELD_SAE_BYTES = 2**30


@dataclass
class Context:
    """Everything an experiment needs, built on first use from `cfg`; run_dir is its folder."""

    cfg: DictConfig
    run_dir: Path
    _matchings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)

    # -- where things live ---------------------------------------------------
    @cached_property
    def cache_dir(self) -> Path:
        return Path(self.cfg.paths.cache_dir).expanduser()

    @cached_property
    def zoo(self):
        """The built-in zoo (built on first use)."""
        from saematch.zoo import ensure_zoo

        size = self.cfg.model.get("zoo_size", "default")
        return ensure_zoo(size=size, cache_dir=self.cache_dir, seed=int(self.cfg.seed))

    @cached_property
    def planted(self):
        """The planted world's SAE set and truth (saes=planted; built on first use)."""
        from saematch_experiments.harness.sae_sets import is_planted_set, planted_of

        s = self.cfg.saes
        if not is_planted_set(self.cfg):
            raise ValueError("this experiment needs the planted world: run it with saes=planted")
        return planted_of(self.cache_dir, self.cfg.seed, s.size, plain(s.knobs))

    # -- model and data ------------------------------------------------------
    @cached_property
    def lm(self):
        from saematch_experiments.harness.models import build_model

        if self.is_planted:
            raise ValueError(
                f"experiment {self.cfg.experiment.name!r} runs a language model, and the planted "
                "world has none (its activations come from a generator, so ΔL is not defined "
                "there). On saes=planted run an experiment that needs only SAEs and "
                "activations (experiment=ground_truth, the default, is one); for this one use "
                "saes=tiny."
            )

        return build_model(self.cfg, self)

    @cached_property
    def batch(self):
        """The token batch of cfg.data (N x T, BOS first, metric mask without BOS)."""
        from saematch_experiments.harness.targets import build

        return build(
            self.cfg.data,
            "data",
            tokenizer=lambda: self.lm.tokenizer,
            bos_token_id=lambda: self.lm.bos_token_id,
        )

    @property
    def batch_size(self) -> int:
        return int(self.cfg.model.batch_size)

    @cached_property
    def is_planted(self) -> bool:
        """Whether the SAE set is the planted world (activations from its generator, no LM)."""
        from saematch_experiments.harness.sae_sets import is_planted_set

        return is_planted_set(self.cfg)

    @property
    def act_device(self):
        """Where activations live: the LM's device, or cfg.model.device on the planted world."""
        import torch

        return torch.device(self.device) if self.is_planted else self.lm.device

    def _planted_acts(self) -> Iterator[Any]:
        """Chunks (L, n, d) of the planted world's x_t for every layer of the same tokens: the
        held-out stream (PlantedSet.activations), data.n_examples × (data.seq_len − 1) tokens,
        as many as an LM run scores."""
        d = self.cfg.data
        x = self.planted.activations(int(d.n_examples) * (int(d.seq_len) - 1))  # (L, n, d)
        step = max(1, self.batch_size) * (int(d.seq_len) - 1)
        for i in range(0, x.shape[1], step):
            yield x[:, i : i + step].to(self.act_device)

    def activation_rows(self, layers: list[int]) -> Iterator[Any]:
        """Activations of `layers` for the run's tokens, chunk by chunk: (len(layers), n, d).

        LM sets: resid_post on cfg.data's batch, the tokens of its metric mask (no BOS). The
        planted world: its generator's x_t of every layer for the same tokens (no LM)."""
        import torch

        from saematch.data import chunks

        if self.is_planted:
            for x in self._planted_acts():
                yield x[list(layers)]
            return
        for b in chunks(self.batch, self.batch_size):
            with torch.inference_mode():
                resid = self.lm.resid_post(b.input_ids, b.attention_mask, layers=layers)
                yield resid[:, b.metric_mask.to(resid.device)]  # (L, n, d)

    @property
    def loss_note(self) -> dict:
        """For results.json: {} on an LM run; on the planted world a note that ΔL is NaN."""
        if not self.is_planted:
            return {}
        return {
            "delta_loss_defined": False,
            "note": "planted world: no LM, so ΔL is not defined (NaN); EV is of the "
            "generator's x_{t+1} (saematch.pruning.ev_sweep)",
        }

    def prune(self, reps: dict, layers: list[int], progress: bool = False) -> list[dict]:
        """saematch.pruning.pruning_sweep of `reps` on this run's model and batch
        (docs/method.md §5); on the planted world saematch.pruning.ev_sweep on its generator's
        activations: EV only, ΔL is NaN (no LM, so no loss)."""
        from saematch.pruning import ev_sweep, pruning_sweep

        if self.is_planted:
            log.warning("planted world: no LM, so ΔL is not defined; pruning reports EV only")
            return ev_sweep(reps, self._planted_acts(), layers)
        b = self.batch
        return pruning_sweep(
            self.lm,
            reps,
            b.input_ids,
            b.metric_mask,
            attention_mask=b.attention_mask,
            layers=layers,
            batch_size=self.batch_size,
            progress=progress,
        )

    @property
    def device(self) -> str:
        return str(self.cfg.model.device)

    # -- SAEs ----------------------------------------------------------------
    @cached_property
    def sae_set(self):
        from saematch_experiments.harness.sae_sets import build_sae_set

        return build_sae_set(self.cfg, self)

    @property
    def layers(self) -> list[int]:
        """The SAE set's layers, ascending."""
        return list(self.sae_set.layers)

    @property
    def next_layer(self) -> dict[int, int]:
        """{t: the next layer of the set}: the adjacent pairs t -> next_layer[t]."""
        return dict(zip(self.layers[:-1], self.layers[1:], strict=True))

    @cached_property
    def saes(self) -> Mapping[int, Any]:
        """{layer: JumpReLUSAE} for every layer of the set, on the model's device, each loaded
        on first access; with matching.fold, each checked foldable (θ in range) as it loads.

        A saematch.lazy_saes.LazySAEs: a set larger than HELD_SAE_BYTES (26 Gemma Scope 16k
        SAEs are 7.9 GB) is held a few SAEs at a time, least recently used dropped, and read
        again when asked for again; a smaller set (the zoo, the planted world) stays loaded."""
        from saematch.lazy_saes import LazySAEs

        device, fold = self.cfg.model.device, bool(self.cfg.matching.fold)

        def load(L: int):
            sae = self.sae_set.load(L, device=device)
            if fold:
                try:
                    sae.check_foldable()
                except ValueError as e:
                    raise ValueError(f"the SAE of layer {L}: {e}") from None
            return sae

        return LazySAEs(self.layers, load, max_bytes=HELD_SAE_BYTES)

    @cached_property
    def solver(self):
        """The Solver object of cfg.matching.solver (`_target_`-built, conf/matching/solver/)."""
        from saematch_experiments.harness.targets import build, node_of

        return build(node_of(self.cfg.matching.solver, "matching.solver"), "matching.solver")

    @property
    def matching_limits(self) -> dict[str, Any]:
        """What a matching may allocate, and where, as every matching call takes it:
        {"max_memory", "device", "bound_gemm"} of cfg.matching. The one place experiments read
        them (the YAML's name, unchanged on its way to the solver)."""
        mc = self.cfg.matching
        return {"max_memory": mc.max_memory, "device": mc.device, "bound_gemm": mc.bound_gemm}

    def matchings(
        self,
        *,
        mode: str | None = None,
        fold: bool | None = None,
        solver: Any = None,
        saes: dict | None = None,
        unmatched: Any = "config",
        partial_ok: bool = False,
    ) -> dict[int, Any]:
        """{t: Matching of t -> the next layer} for every adjacent pair of `saes` ({layer: SAE},
        default: the set); cfg.matching's settings unless given; cached on disk.

        cfg.matching.unmatched / confidence / top_k / splits go beyond the bijection
        (saematch.matching.beyond). A matching that leaves features unmatched (perm −1) is an
        error unless the caller says it handles them (partial_ok=True).
        """
        from saematch.lazy_saes import LayerSequence, mapped
        from saematch.matching import match_layers, parse_unmatched

        mc = self.cfg.matching
        mode = mode or plain(mc.mode)
        fold = bool(mc.fold) if fold is None else fold
        solver = solver or self.solver
        saes = self.saes if saes is None else saes
        setting = parse_unmatched(mc.unmatched if unmatched == "config" else unmatched)
        if setting is not None and not partial_ok:
            raise ValueError(
                f"experiment {self.cfg.experiment.name!r} needs a bijection, but "
                f"matching.unmatched={setting} leaves features unmatched; run it with "
                "matching.unmatched=null, or use experiment=beyond_bijection"
            )
        beyond = {
            "unmatched": setting,
            "confidence": bool(mc.confidence),  # conf/matching/ owns these values
            "top_k": int(mc.top_k or 0),
            "splits": bool(mc.splits),
        }
        bias_weight = float(mc.bias_weight)
        layers = sorted(saes)
        key = (mode, fold, str(solver), bias_weight, *beyond.values())
        # the set itself is one object for the whole run (its SAEs are reloaded, not kept)
        key += ("set",) if saes is self.saes else (tuple((L, id(saes[L])) for L in layers),)
        if key not in self._matchings:
            cache = self.cache_dir / "matchings" if mc.cache else None
            on_cpu = mapped(saes, lambda s: s.to("cpu"))  # pair by pair: never all at once
            ms = match_layers(
                LayerSequence(on_cpu, layers),
                mode=mode,
                fold=fold,
                solver=solver,
                cache_dir=cache,
                **self.matching_limits,
                bias_weight=bias_weight,
                **beyond,
            )
            self._matchings[key] = dict(zip(layers[:-1], ms, strict=True))
        return self._matchings[key]

    def perms(self, **kw) -> dict[int, Any]:
        """{t: perm (F,) of t -> next}: the permutations of `matchings(**kw)`."""
        return {t: m.perm for t, m in self.matchings(**kw).items()}

    # -- descriptions and judge ----------------------------------------------
    def descriptions(self, layer: int):
        """The DescriptionSource of the SAE at `layer` (cfg.descriptions, `_target_`-built)."""
        from saematch_experiments.harness.sae_sets import descriptions_of

        return descriptions_of(self.cfg, self, layer)

    @cached_property
    def judge(self):
        """The judge of cfg.judge (`_target_`-built); answers cached under the cache dir."""
        from saematch_experiments.harness.targets import build

        return build(self.cfg.judge, "judge", cache_dir=lambda: self.cache_dir / "judge")
