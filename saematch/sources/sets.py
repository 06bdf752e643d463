"""The SAE sets of docs/method.md §7: `SAESpec`, `SAESet` (loads them layer by layer) and the named
sets.

The published ids themselves are in set_ids.py (a snapshot; nothing here queries the hub).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch

from saematch.sae import JumpReLUSAE
from saematch.sources.gemma_scope import (
    GEMMA_SCOPE_2B_RES,
    GEMMA_SCOPE_2B_RES_CANONICAL,
    load_gemma_scope,
)
from saematch.sources.llama_scope import LLAMA_SCOPE_LXR_8X, load_llama_scope
from saematch.sources.local import load_sae
from saematch.sources.set_ids import (  # noqa: F401  (re-exported: the ids live there)
    GEMMA2_2B_LAYERS,
    GEMMA_SCOPE_CANONICAL_L0,
    GEMMA_SCOPE_PAPER_FALLBACKS,
    GEMMA_SCOPE_PAPER_L0,
    GEMMA_SCOPE_PUBLISHED_L0,
    LLAMA31_8B_LAYERS,
    SWEEP_LAYERS,
    Layers,
    gemma_scope_canonical_ids,
    gemma_scope_paper_ids,
    gemma_scope_sweep_ids,
    llama_scope_ids,
    parse_layers,
)


@dataclass(frozen=True)
class SAESpec:
    """Where one SAE lives: a loader (`source`), a repo (hub id or local dir) and an id in it."""

    source: str  # "gemma_scope" | "llama_scope" | "local" | "saelens" (repo_id/sae_id: a folder)
    repo_id: str
    sae_id: str
    revision: str | None = None
    note: str = ""  # why this SAE differs from the set's rule (e.g. a fallback)
    site: str = "resid_post"  # activation site it reads (saematch.lm.sites.SITES)
    architecture: str = "jumprelu"  # jumprelu | standard (ReLU) | topk: only jumprelu folds

    def load(
        self,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
    ) -> JumpReLUSAE:
        """Load this SAE with its source's loader."""
        hub = {"revision": self.revision, "cache_dir": cache_dir}
        hub["local_files_only"] = local_files_only
        if self.source == "gemma_scope":
            sae = load_gemma_scope(self.repo_id, self.sae_id, device=device, dtype=dtype, **hub)
        elif self.source == "llama_scope":
            sae = load_llama_scope(self.repo_id, self.sae_id, device=device, dtype=dtype, **hub)
        elif self.source == "local":
            sae = load_sae(os.path.join(self.repo_id, self.sae_id), device=device).to(dtype=dtype)
        elif self.source == "saelens":
            from saematch.sources.saelens import load_saelens_folder

            sae = load_saelens_folder(self.repo_id, self.sae_id, device=device, dtype=dtype, **hub)
        else:
            raise ValueError(
                f"unknown SAE source {self.source!r}; use gemma_scope, llama_scope, local, saelens."
            )
        if self.note:
            sae.meta["note"] = self.note
        sae.meta.setdefault("site", self.site)
        return sae


@dataclass
class SAESet:
    """SAEs per layer: `entries[layer]` is one spec, or several for a sparsity sweep."""

    name: str
    entries: dict[int, tuple[SAESpec, ...]]
    description: str = ""

    def __post_init__(self) -> None:
        norm = {}
        for L, v in self.entries.items():
            specs = (v,) if isinstance(v, SAESpec) else tuple(v)
            if not specs:
                raise ValueError(f"SAE set {self.name!r}: layer {L} has no SAE.")
            norm[int(L)] = specs
        self.entries = dict(sorted(norm.items()))

    @classmethod
    def from_ids(
        cls,
        name: str,
        source: str,
        repo_id: str,
        ids: Mapping[int, str | Sequence[str]],
        *,
        revision: str | None = None,
        notes: Mapping[int, str] | None = None,
        description: str = "",
        site: str = "resid_post",
    ) -> SAESet:
        """A set from layer -> sae_id (or a list of sae_ids, e.g. for a sparsity sweep)."""
        notes = notes or {}
        entries = {
            L: tuple(
                SAESpec(source, str(repo_id), s, revision, notes.get(L, ""), site)
                for s in ((v,) if isinstance(v, str) else v)
            )
            for L, v in ids.items()
        }
        return cls(name, entries, description)

    @property
    def layers(self) -> tuple[int, ...]:
        """The set's layers, ascending."""
        return tuple(self.entries)

    @property
    def notes(self) -> dict[int, str]:
        """layer -> the reason its SAE departs from the set's rule (fallbacks)."""
        return {L: s[0].note for L, s in self.entries.items() if s[0].note}

    def unfoldable(self) -> dict[int, str]:
        """layer -> architecture of each SAE with no threshold θ to fold (ReLU, TopK)."""
        return {
            L: s.architecture
            for L, specs in self.entries.items()
            for s in specs
            if s.architecture != "jumprelu"
        }

    def specs(self, layer: int) -> tuple[SAESpec, ...]:
        """The spec(s) of one layer."""
        if layer not in self.entries:
            raise KeyError(f"SAE set {self.name!r} has no layer {layer}; it has {self.layers}.")
        return self.entries[layer]

    def narrow(self, layers: Layers) -> SAESet:
        """The same set restricted to `layers` (iterable, range, "a-b" or "a:b")."""
        keep = parse_layers(layers)
        missing = [L for L in keep if L not in self.entries]
        if missing:
            raise ValueError(f"SAE set {self.name!r} lacks layers {missing}; it has {self.layers}.")
        return replace(self, entries={L: self.entries[L] for L in keep})

    def with_repo(self, repo_id: str | os.PathLike) -> SAESet:
        """Every spec read from another repo (a local mirror directory or an HF mirror id)."""
        entries = {
            L: tuple(replace(s, repo_id=str(repo_id)) for s in specs)
            for L, specs in self.entries.items()
        }
        return replace(self, entries=entries)

    def load(self, layer: int, which: int | str | None = None, **load_kw) -> JumpReLUSAE:
        """Load the SAE of `layer` (`which` = index or sae_id when the layer has several)."""
        specs = self.specs(layer)
        if which is None:
            if len(specs) > 1:
                raise ValueError(
                    f"layer {layer} of {self.name!r} has {len(specs)} SAEs "
                    f"{[s.sae_id for s in specs]}; pass which= (index or sae_id) or load_sweep()."
                )
            return specs[0].load(**load_kw)
        if isinstance(which, str):
            found = [s for s in specs if s.sae_id == which]
            if not found:
                raise KeyError(f"{which!r} is not in layer {layer}: {[s.sae_id for s in specs]}")
            return found[0].load(**load_kw)
        return specs[which].load(**load_kw)

    def load_all(self, **load_kw) -> dict[int, JumpReLUSAE]:
        """layer -> its SAE, for sets with one SAE per layer."""
        return {L: self.load(L, **load_kw) for L in self.entries}

    def load_sweep(self, **load_kw) -> dict[int, list[JumpReLUSAE]]:
        """layer -> every SAE of that layer, in the set's order."""
        return {L: [s.load(**load_kw) for s in specs] for L, specs in self.entries.items()}

    def to_dict(self) -> dict:
        """Plain JSON-able description (for run records and configs)."""
        return {
            "name": self.name,
            "description": self.description,
            "layers": {str(L): [vars(s) for s in specs] for L, specs in self.entries.items()},
            "notes": {str(L): n for L, n in self.notes.items()},
        }


def gemma_scope_paper_set(
    layers: Layers = None,
    *,
    repo_id: str | os.PathLike = GEMMA_SCOPE_2B_RES,
    revision: str | None = None,
) -> SAESet:
    """The paper's Gemma Scope set (Table 1), canonical fallbacks at layers 0 and 1
    (docs/method.md §7)."""
    notes = {L: r for L, (_, r) in GEMMA_SCOPE_PAPER_FALLBACKS.items()}
    ids = gemma_scope_paper_ids(layers)
    desc = "Gemma Scope 2B res, width 16k, average_l0 from the paper's Table 1"
    notes = {L: notes[L] for L in ids if L in notes}
    return SAESet.from_ids(
        "gemma_scope_paper",
        "gemma_scope",
        repo_id,
        ids,
        revision=revision,
        notes=notes,
        description=desc,
    )


def gemma_scope_canonical_set(
    layers: Layers = None,
    *,
    repo_id: str | None = None,
    via_main_repo: bool = False,
    revision: str | None = None,
) -> SAESet:
    """Canonical Gemma Scope SAEs: `layer_{L}/width_16k/canonical` in the -canonical repo, or
    (via_main_repo=True) the average_l0 folders they point to in google/gemma-scope-2b-pt-res."""
    ids = gemma_scope_canonical_ids(layers, resolve=via_main_repo)
    repo = repo_id or (GEMMA_SCOPE_2B_RES if via_main_repo else GEMMA_SCOPE_2B_RES_CANONICAL)
    desc = "Gemma Scope 2B res, width 16k, canonical SAEs"
    return SAESet.from_ids(
        "gemma_scope_canonical", "gemma_scope", repo, ids, revision=revision, description=desc
    )


def gemma_scope_sweep_set(
    layers: Layers = SWEEP_LAYERS,
    *,
    sae_ids: Mapping[int, Sequence[str]] | None = None,
    repo_id: str | os.PathLike = GEMMA_SCOPE_2B_RES,
    revision: str | None = None,
) -> SAESet:
    """Sparsity sweep (Fig. 14-15): every published l0 at `layers`, or the explicit `sae_ids`."""
    ids = dict(sae_ids) if sae_ids is not None else gemma_scope_sweep_ids(layers)
    desc = "Gemma Scope 2B res, width 16k, every published average_l0 per layer"
    return SAESet.from_ids(
        "gemma_scope_sweep", "gemma_scope", repo_id, ids, revision=revision, description=desc
    )


def llama_scope_set(
    layers: Layers = None,
    *,
    repo_id: str | os.PathLike = LLAMA_SCOPE_LXR_8X,
    revision: str | None = None,
) -> SAESet:
    """Llama Scope resid_post SAEs of Llama-3.1-8B (`Llama3_1-8B-Base-L{L}R-8x`)."""
    desc = "Llama Scope LXR-8x (Llama-3.1-8B resid_post, width 32k)"
    ids = llama_scope_ids(layers)
    return SAESet.from_ids(
        "llama_scope", "llama_scope", repo_id, ids, revision=revision, description=desc
    )


SETS = {
    "gemma_scope_paper": gemma_scope_paper_set,
    "gemma_scope_canonical": gemma_scope_canonical_set,
    "gemma_scope_sweep": gemma_scope_sweep_set,
    "llama_scope": llama_scope_set,
}
