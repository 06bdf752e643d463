"""Where a Hugging Face causal LM keeps its decoder stack, found from the model's structure.

The runner needs three things of any decoder-only LM (saematch.lm.runner):

    base        the stack: embeddings, blocks, final norm; base(input_ids | inputs_embeds)
                returns last_hidden_state after the final norm
    layers      the blocks, in order; resid_post of block l is the output of layers[l]
    positions   an absolute position embedding that base adds to inputs_embeds (GPT-2's wpe),
                or None for rotary models; resuming from a block must not add it twice

Found by attribute, not by class name, so any model laid out like one of these works:

    family                      base                       layers   positions
    Llama, Mistral, Qwen 2/3,   model.model                .layers  -
    Gemma 1/2/3 (text)
    Gemma 3 (multimodal)        model.model.language_model .layers  -
    GPT-2                       model.transformer          .h       .wpe
    GPT-NeoX / Pythia           model.gpt_neox             .layers  -
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

BASE_PATHS = ("model.language_model", "model", "transformer", "gpt_neox", "language_model")
LAYER_NAMES = ("layers", "h")
POSITION_NAMES = ("wpe",)  # absolute position embeddings added inside base.forward


@dataclass
class DecoderStack:
    """The decoder stack of a causal LM (module docstring)."""

    base: nn.Module
    layers: nn.ModuleList
    positions: nn.Module | None


def _get(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def decoder_stack(model: nn.Module) -> DecoderStack:
    """The DecoderStack of `model`; ValueError naming the supported layouts when none fits."""
    for path in BASE_PATHS:
        base = _get(model, path)
        if not isinstance(base, nn.Module):
            continue
        for name in LAYER_NAMES:
            layers = getattr(base, name, None)
            if isinstance(layers, nn.ModuleList) and len(layers):
                pos = next((getattr(base, p) for p in POSITION_NAMES if hasattr(base, p)), None)
                return DecoderStack(base, layers, pos)
    raise ValueError(
        f"{type(model).__name__} has no decoder stack saematch knows: it looks for "
        f"{' / '.join(BASE_PATHS)} holding .layers or .h (Llama, Mistral, Qwen 2, Gemma 1-3, "
        "GPT-2, GPT-NeoX/Pythia). Pass a decoder-only *ForCausalLM model."
    )
