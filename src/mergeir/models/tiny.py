"""Tiny deterministic models and tokenizer for tests and the pipeline's `test` profile.

The tokenizer behaves like e5-mistral's under transformers 5: it prepends BOS and does NOT append EOS,
so code that needs the EOS must add it itself (docs/paper.md, "Encoding").
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import MergeirError
from ..io import Stage

# `bin/make_tiny.py models` output: source/provenance.json names its builder
TINY_STAGE = Stage("make_tiny", "source/provenance.json", key="built_by", value="bin/make_tiny.py")

# ids follow Mistral's convention: <unk>=0, <s>=1, </s>=2
SPECIALS = ["<unk>", "<s>", "</s>"]
# the most layers / width a tiny model is built with (e5-mistral has 32 layers): `--layers 10**30` never returned
MAX_TINY_SIZE = 1024
_WORD = re.compile(r"\w+|[^\w\s]+")  # same split as pre_tokenizers.Whitespace


def _words(texts) -> list[str]:
    seen: dict[str, None] = {}
    for t in texts:
        for w in _WORD.findall(t.lower()):
            seen.setdefault(w, None)
    return sorted(seen)


def build_tokenizer(texts, out: str | Path | None = None, vocab_size: int | None = None):
    """A word-level fast tokenizer over `texts` (lower-cased), BOS prepended, no EOS. Saved to `out` if given."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS)}
    for w in _words(texts):
        if vocab_size is not None and len(vocab) >= vocab_size:
            break
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # \w+|[^\w\s]+, whitespace dropped
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )
    if out is not None:
        fast.save_pretrained(str(out))
    return fast


def build_mistral(
    out: str | Path,
    *,
    seed: int,
    layout: str = "causal",
    vocab_size: int = 512,
    hidden_size: int = 32,
    intermediate_size: int = 64,
    num_hidden_layers: int = 4,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    tokenizer=None,
    randomise_norms: bool = True,
):
    """Save a random Mistral as `MistralModel` (layout="model", like e5-mistral) or `MistralForCausalLM`
    (layout="causal", like BioMistral). Norm weights are randomised so two seeds differ everywhere."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM, MistralModel

    if layout not in ("model", "causal"):
        raise ValueError("layout must be 'model' or 'causal'")
    for name, v in (("num_hidden_layers", num_hidden_layers), ("hidden_size", hidden_size),
                    ("vocab_size", vocab_size), ("num_attention_heads", num_attention_heads)):
        if not isinstance(v, int) or v < 1:
            raise MergeirError(f"{name} must be at least 1, got {v}")
        if name != "vocab_size" and v > MAX_TINY_SIZE:
            raise MergeirError(f"{name} must be at most {MAX_TINY_SIZE} for a tiny model, got {v}")
    config = MistralConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        max_position_embeddings=1024,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
        sliding_window=None,
    )
    torch.manual_seed(seed)
    model = (MistralModel if layout == "model" else MistralForCausalLM)(config)
    if randomise_norms:
        g = torch.Generator().manual_seed(seed + 1000)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("norm.weight"):
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
    model.eval()
    out = Path(out)
    model.save_pretrained(str(out), safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    return model
