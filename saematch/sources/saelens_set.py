"""SAELens SAEs as an SAE set (docs/method.md §7): a release with ids, or a layer pattern.

    saelens_set("gpt2-small-res-jb", pattern="blocks.*.hook_resid_pre")         # sae-lens table
    saelens_set("jbloom/GPT2-Small-SAEs-Reformatted", ids=["blocks.8.hook_resid_pre", ...])
    saelens_set("/data/my_saes", pattern="layer_{layer}")                      # local folders

Each SAE's layer and site come from the hook name in its cfg.json (saematch.sources.saelens.
hook_site), so blocks.L.hook_resid_pre lands on layer L − 1 (it is resid_post of block L − 1).
Only cfg.json files are read here; the weights load when the set's SAEs do.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from saematch.sources.gemma_scope import fetch_file
from saematch.sources.saelens import SAE_CFG, hook_site, read_saelens_config, resolve_release
from saematch.sources.sets import SAESet, SAESpec


def saelens_set(
    release: str,
    ids: list[str] | None = None,
    pattern: str | None = None,
    revision: str | None = None,
) -> SAESet:
    """The SAEs `ids` of `release` (a SAELens release, hub repo or local folder), or every id
    matching `pattern`, {layer} or * standing for a number (e.g. blocks.*.hook_resid_post)."""
    if (ids is None) == (pattern is None):
        raise ValueError(
            "saes=saelens needs exactly one of saes.ids=[<id>, ...] or saes.pattern=<id with * "
            "for the layer>, e.g. saes.pattern=blocks.*.hook_resid_pre"
        )
    repo, table = resolve_release(release)
    if pattern is not None:
        have = sorted(table) if table is not None else list_saelens_folders(repo, revision)
        chosen = ids_matching(pattern, have)
        if not chosen:
            raise ValueError(
                f"saes.pattern={pattern!r} matches no SAE of {release!r}; it has {have[:12]}"
                f"{' …' if len(have) > 12 else ''}"
            )
    else:
        chosen = [str(i) for i in ids]
    entries, sites, skipped = {}, set(), []
    for sae_id in chosen:
        if table is not None and sae_id not in table:
            have = sorted(table)[:12]
            raise ValueError(f"saes.ids: release {release!r} has no id {sae_id!r}; it has {have}")
        folder = table[sae_id] if table is not None else sae_id.strip("/")
        cfg_path = fetch_file(repo, f"{folder}/{SAE_CFG}" if folder else SAE_CFG, revision=revision)
        cfg = read_saelens_config(cfg_path)
        if pattern is not None and cfg.hook_name == "blocks.0.hook_resid_pre":
            skipped.append(sae_id)  # the embeddings: no block output to match it to
            continue
        site, layer = hook_site(cfg.hook_name, f"{release}/{sae_id}")
        if layer in entries:
            raise ValueError(
                f"SAEs {entries[layer].sae_id!r} and {folder!r} both read layer {layer}; pick "
                "one per layer (saes.ids, or a narrower saes.pattern)"
            )
        sites.add(site)
        entries[layer] = SAESpec(
            "saelens", repo, folder, revision, site=site, architecture=cfg.architecture
        )
    if len(sites) > 1:
        raise ValueError(f"the chosen SAEs read different sites {sorted(sites)}; a set reads one")
    desc = f"SAELens {release} ({len(entries)} SAEs)"
    if skipped:
        desc += f"; left out {skipped} (the embeddings, not a block output)"
    return SAESet(f"saelens/{release}", entries, desc)


def ids_matching(pattern: str, ids: list[str]) -> list[str]:
    """The ids that `pattern` matches, {layer} (or *, which needs no quotes on the command line)
    standing for a layer number; ordered by that number."""
    slot = "{layer}" if "{layer}" in pattern else "*"
    if pattern.count(slot) != 1:
        raise ValueError(
            f"saes.pattern={pattern!r}: write the id with one {{layer}} or one * where the "
            "layer number goes, e.g. blocks.*.hook_resid_post"
        )
    rx = re.compile("^" + re.escape(pattern).replace(re.escape(slot), r"(\d+)") + "$")
    hits = [(int(m.group(1)), i) for i in ids if (m := rx.match(i))]
    return [i for _, i in sorted(hits)]


def list_saelens_folders(repo: str | os.PathLike, revision: str | None = None) -> list[str]:
    """The SAE folders (those holding a cfg.json) of a local folder or a hub repo, relative.

    A hub repo is listed from the Hugging Face cache when offline (HF_HUB_OFFLINE=1), else its
    cfg.json files are fetched (small) into that cache first.
    """
    root = Path(str(repo)).expanduser()
    if not root.is_dir():
        from huggingface_hub import constants, snapshot_download

        try:
            got = snapshot_download(
                str(repo),
                revision=revision,
                allow_patterns=[SAE_CFG, f"*/{SAE_CFG}"],
                local_files_only=constants.HF_HUB_OFFLINE,
            )
        except Exception as e:  # noqa: BLE001 - offline/not cached/gated: all say the same
            raise FileNotFoundError(
                f"cannot list the SAEs of hub repo {str(repo)!r} ({type(e).__name__}: {e}); "
                "online, check the name; offline, download it once (`huggingface-cli download "
                f"{repo}`) or give saes.ids explicitly"
            ) from e
        root = Path(got)
    found = sorted(
        p.parent.relative_to(root).as_posix() for p in root.rglob(SAE_CFG) if p.is_file()
    )
    return [f if f != "." else "" for f in found]
