"""Key layouts of model checkpoints: how a checkpoint names its tensors, told apart from the names alone.

The paper's source (e5-mistral) is saved as a bare `MistralModel` (keys `layers.*`, `embed_tokens`, `norm`), its
domain models as `MistralForCausalLM` (keys `model.*`, `lm_head`). Every key is mapped to one *canonical* layout per
family — the names mergekit's own architecture definitions use (`MistralForCausalLM` for Mistral, `BertModel` for
BERT) — so that two checkpoints saved differently are compared and merged tensor by tensor, never by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from ..errors import MergeirError


@dataclass(frozen=True)
class Layout:
    """How one checkpoint names its tensors. `prefix` is what stands before the backbone's own names."""

    name: str  # mistral-model | mistral-causal | bert-model | bert-prefixed
    family: str  # mistral | bert
    prefix: str  # "" (bare backbone), "model." (MistralForCausalLM) or "bert." (BertFor*)
    architecture: str  # the transformers class whose state dict this is


LAYOUTS = {
    "mistral-model": Layout("mistral-model", "mistral", "", "MistralModel"),
    "mistral-causal": Layout("mistral-causal", "mistral", "model.", "MistralForCausalLM"),
    "bert-model": Layout("bert-model", "bert", "", "BertModel"),
    "bert-prefixed": Layout("bert-prefixed", "bert", "bert.", "BertFor*"),
}
# canonical prefix per family: mergekit's mistral.json names `model.*` + `lm_head`; bert.json names the bare BertModel
CANONICAL_PREFIX = {"mistral": "model.", "bert": ""}
# the per-layer part of a canonical key, and the key of the input embeddings (`get_input_embeddings()`)
LAYER_RE = {"mistral": re.compile(r"^model\.layers\.(\d+)\."), "bert": re.compile(r"^encoder\.layer\.(\d+)\.")}
INPUT_EMBEDDINGS = {"mistral": "model.embed_tokens.weight", "bert": "embeddings.word_embeddings.weight"}
# BERT's backbone tensors (what the `bert.` prefix wraps); anything else in a BertFor* checkpoint is a task head
_BERT_BACKBONE = ("embeddings.", "encoder.", "pooler.")


def detect_layout(keys: Iterable[str], where: str = "checkpoint") -> Layout:
    """Tell the four layouts apart from the tensor names alone (config `architectures` is often wrong or absent)."""
    keys = set(keys)
    if any(k.startswith("model.layers.") for k in keys):
        return LAYOUTS["mistral-causal"]
    if any(k.startswith("layers.") for k in keys) and "embed_tokens.weight" in keys:
        return LAYOUTS["mistral-model"]
    if any(k.startswith("bert.encoder.layer.") for k in keys):
        return LAYOUTS["bert-prefixed"]
    if any(k.startswith("encoder.layer.") for k in keys):
        return LAYOUTS["bert-model"]
    sample = ", ".join(sorted(keys)[:4]) or "no tensors"
    raise MergeirError(
        f"{where}: unknown key layout (first keys: {sample}); supported: Mistral (MistralModel or "
        "MistralForCausalLM) and BERT (BertModel or bert.-prefixed)"
    )


def to_canonical(key: str, layout: Layout) -> str:
    """Native key -> canonical key (mergekit's architecture-definition names)."""
    if layout.name == "mistral-model":
        return "model." + key
    if layout.name == "bert-prefixed" and key.startswith("bert."):
        return key[len("bert."):]
    return key


def from_canonical(ckey: str, layout: Layout) -> str | None:
    """Canonical key -> native key of `layout`; None when that layout has no such tensor (lm_head of a MistralModel)."""
    if layout.name == "mistral-model":
        return ckey[len("model."):] if ckey.startswith("model.") else None
    if layout.name == "bert-prefixed" and ckey.startswith(_BERT_BACKBONE):
        return "bert." + ckey
    return ckey


def key_role(family: str, ckey: str) -> tuple[str, int | None]:
    """Where a canonical key sits in the network, which decides the α mergekit gives it.

    Returns (role, layer): `embed` (input embeddings: merged with the first slice's weights), `pre` (other weights
    before the first layer, first slice), `layer` (its layer's slice), `post` (final norm, lm_head, BERT pooler:
    the last slice), `extra` (buffers and task heads mergekit does not merge: copied from the source).
    """
    if m := LAYER_RE[family].match(ckey):
        return "layer", int(m.group(1))
    if ckey == INPUT_EMBEDDINGS[family]:
        return "embed", None
    if family == "mistral":
        if ckey in ("model.norm.weight", "lm_head.weight"):
            return "post", None
        return "extra", None
    if ckey.startswith("embeddings.") and ckey.endswith((".weight", ".bias")):
        return "pre", None  # position/token-type embeddings and the embedding LayerNorm
    if ckey.startswith("pooler."):
        return "post", None
    return "extra", None  # embeddings.position_ids (int64 buffer), cls.* heads

