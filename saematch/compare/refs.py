"""SAE references for compare: one string names any SAE saematch loads.

    planted:layer=3[,index=1][,width=768][,seed=0][,size=default][,n_seeds=2][,<knob>=v]
    zoo:layer=2[,index=1][,sparsity=l0_16][,size=default][,seed=0]
    gemma-scope:google/gemma-scope-2b-pt-res:layer_20/width_16k/average_l0_71
    llama-scope:fnlp/Llama3_1-8B-Base-LXR-8x:Llama3_1-8B-Base-L20R-8x
    saelens:<release>:<sae_id>            (a release: needs sae-lens)
    saelens:<hub repo or folder>:<sae folder>   (read without sae-lens where saematch can)
    file:<folder or sae.safetensors>      (saematch's own format; a bare path works too)

planted: a layer of the planted world (docs/method.md §9); index k = the k-th SAE trained on
that layer (n_seeds defaults to index + 1; two references to one world share it, see
load_pair), width = the SAEs' width (the world, and so the truth, is the same for every
width). zoo: the built-in zoo's SAE of a layer; index 1 = its second-seed SAE. Hub ids: repo and
SAE id separated by ":" (for "owner/name/sae_id" the first two segments are the repo).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from saematch.sae import JumpReLUSAE

KINDS = ("planted", "zoo", "gemma-scope", "llama-scope", "saelens", "file")
HELP = (
    "an SAE reference is KIND:WHAT with KIND one of planted, zoo, gemma-scope, llama-scope, "
    "saelens, file (or a bare path), e.g. planted:layer=3,index=1, zoo:layer=2, "
    "gemma-scope:google/gemma-scope-2b-pt-res:layer_20/width_16k/average_l0_71, "
    "file:path/to/sae_folder"
)
INT_KEYS = ("layer", "index", "seed", "width", "n_seeds", "steps", "n_train", "l0_target")


@dataclass
class Reference:
    """A parsed reference: kind, its key=value options (planted, zoo) or (repo, sae_id)."""

    kind: str
    text: str
    options: dict = field(default_factory=dict)
    repo: str = ""
    sae_id: str = ""


def _options(kind: str, spec: str, text: str) -> dict:
    out = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        if "=" not in item:
            raise ValueError(f"SAE reference {text!r}: {item!r} is not key=value; {HELP}")
        k, v = (s.strip() for s in item.split("=", 1))
        if k in INT_KEYS:
            try:
                v = int(v)
            except ValueError:
                raise ValueError(f"SAE reference {text!r}: {k} must be an integer") from None
        else:
            with contextlib.suppress(ValueError):  # a number where it reads as one
                v = float(v)
        out[k] = v
    if "layer" not in out:
        raise ValueError(f"SAE reference {text!r}: {kind} needs layer=<n>; {HELP}")
    return out


def _repo_and_id(spec: str, text: str) -> tuple[str, str]:
    if ":" in spec:
        repo, sae_id = spec.split(":", 1)
    else:
        parts = spec.strip("/").split("/")
        if len(parts) < 3:
            raise ValueError(f"SAE reference {text!r}: need <repo>:<sae id>; {HELP}")
        repo, sae_id = "/".join(parts[:2]), "/".join(parts[2:])
    if not repo or not sae_id:
        raise ValueError(f"SAE reference {text!r}: need <repo>:<sae id>; {HELP}")
    return repo, sae_id


def parse_reference(text: str) -> Reference:
    """Reference of a string (module doc); ValueError naming the accepted forms."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty SAE reference; {HELP}")
    text = text.strip()
    kind, sep, spec = text.partition(":")
    if not sep or kind not in KINDS:
        if Path(text).exists():
            return Reference("file", text, repo=text)
        raise ValueError(f"SAE reference {text!r}: unknown kind and no such path; {HELP}")
    if kind in ("planted", "zoo"):
        return Reference(kind, text, _options(kind, spec, text))
    if kind == "file":
        return Reference("file", text, repo=spec)
    repo, sae_id = _repo_and_id(spec, text)
    return Reference(kind, text, repo=repo, sae_id=sae_id)


def _planted(ref: Reference, cache_dir) -> JumpReLUSAE:
    from saematch.planted import ensure_planted

    o = dict(ref.options)
    layer, index, seed = o.pop("layer"), o.pop("index", 0), o.pop("seed", 0)
    size = str(o.pop("size", "default"))
    o["n_seeds"] = max(int(o.get("n_seeds", 1)), index + 1)
    ps = ensure_planted(size, cache_dir=cache_dir, seed=int(seed), progress=False, **o)
    if not 0 <= layer < ps.n_layers:
        raise ValueError(f"SAE reference {ref.text!r}: layer {layer} not in 0..{ps.n_layers - 1}")
    sae = ps.load_sae(layer, index)
    sae.meta = {**sae.meta, "planted_root": str(ps.root), "layer": layer, "seed_index": index}
    return sae


def _zoo(ref: Reference, cache_dir) -> JumpReLUSAE:
    from saematch.sources import load_sae
    from saematch.zoo import ensure_zoo
    from saematch.zoo.build import second_seed_dir

    o = dict(ref.options)
    layer, index = o.pop("layer"), o.pop("index", 0)
    zoo = ensure_zoo(str(o.pop("size", "default")), cache_dir, int(o.pop("seed", 0)), False)
    sparsity = o.pop("sparsity", None)
    if o:
        raise ValueError(f"SAE reference {ref.text!r}: unknown zoo option(s) {sorted(o)}")
    if index == 0:
        return zoo.load_sae(layer, sparsity)
    level = sparsity or zoo.default_sparsity
    folder = second_seed_dir(zoo.root, layer, level)
    if index != 1 or not folder.is_dir():
        raise ValueError(
            f"SAE reference {ref.text!r}: the zoo has a second seed (index=1) only at its "
            f"default sparsity {zoo.default_sparsity}; no SAE at {folder}"
        )
    return load_sae(folder)


def _saelens(r: Reference, cache_dir) -> JumpReLUSAE:
    """A SAELens folder (cfg.json + sae_weights.safetensors in a local dir or hub repo) through
    sources.saelens.load_saelens_folder where this saematch has it (read without sae-lens);
    else, and for a release name (no "/", no such folder), sae-lens' registry."""
    from saematch.sources import saelens

    folder_loader = getattr(saelens, "load_saelens_folder", None)
    if folder_loader is not None and ("/" in r.repo or Path(r.repo).exists()):
        return folder_loader(r.repo, r.sae_id, cache_dir=cache_dir)
    return saelens.load_saelens(r.repo, r.sae_id)


def load_reference(
    ref: str | Reference, cache_dir: str | os.PathLike | None = None, **planted_overrides
) -> JumpReLUSAE:
    """The SAE a reference names (module doc), loaded on the CPU in float32; the reference
    string is kept in sae.meta["reference"]. planted_overrides: knobs merged into a planted
    reference (load_pair uses it to give two references of one world the same n_seeds)."""
    r = parse_reference(ref) if isinstance(ref, str) else ref
    if r.kind == "planted":
        r = Reference(r.kind, r.text, {**r.options, **planted_overrides})
        sae = _planted(r, cache_dir)
    elif r.kind == "zoo":
        sae = _zoo(r, cache_dir)
    elif r.kind == "gemma-scope":
        from saematch.sources import load_gemma_scope

        sae = load_gemma_scope(r.repo, r.sae_id, cache_dir=cache_dir)
    elif r.kind == "llama-scope":
        from saematch.sources import load_llama_scope

        sae = load_llama_scope(r.repo, r.sae_id, cache_dir=cache_dir)
    elif r.kind == "saelens":
        sae = _saelens(r, cache_dir)
    else:
        from saematch.sources import load_sae

        sae = load_sae(r.repo)
    sae.meta = {**(sae.meta or {}), "reference": r.text}
    return sae


def load_pair(
    a: str, b: str, cache_dir: str | os.PathLike | None = None
) -> tuple[JumpReLUSAE, JumpReLUSAE]:
    """Both SAEs; two planted references that differ only in `index` (and n_seeds) share one
    planted set with n_seeds = the larger index + 1, so "a"'s seed 0 is the seed 0 that "b"'s
    seed 1 was trained beside (one build, one truth)."""
    ra, rb = parse_reference(a), parse_reference(b)
    extra: dict = {}
    if ra.kind == rb.kind == "planted":
        rest = lambda o: {k: v for k, v in o.items() if k not in ("index", "n_seeds")}  # noqa: E731
        if rest(ra.options) == rest(rb.options):
            n = [r.options.get("index", 0) + 1 for r in (ra, rb)]
            n += [r.options.get("n_seeds", 1) for r in (ra, rb)]
            extra["n_seeds"] = max(n)
    return load_reference(ra, cache_dir, **extra), load_reference(rb, cache_dir, **extra)
