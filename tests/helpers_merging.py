"""Tiny checkpoints for the model/merge/sweep tests, built at test time with mergeir.models.tiny (fixed seeds).

source: MistralModel (keys `layers.*`, like e5-mistral), domain: MistralForCausalLM (keys `model.*` + lm_head, like
BioMistral), base: another MistralForCausalLM (common ancestor for task-vector methods). Norms are randomised, so
every tensor differs between the three.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_BEIR = Path(__file__).resolve().parent / "fixtures" / "tiny-beir"
LAYERS = 4


def texts_of(collection: Path) -> list[str]:
    texts = []
    for name in ("corpus.jsonl", "queries.jsonl"):
        for line in (collection / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                obj = json.loads(line)
                texts.append(obj.get("title", "") + " " + obj["text"])
    texts.append("Instruct: Given a question, retrieve relevant documents that best answer the question\nQuery:")
    return texts


def build_models(root: Path, layers: int = LAYERS, hidden: int = 32, seed: int = 0) -> dict[str, Path]:
    """source (MistralModel), domain (MistralForCausalLM), base (MistralForCausalLM) sharing one tokenizer."""
    from mergeir.models import build_mistral, build_tokenizer

    tok = build_tokenizer(texts_of(TINY_BEIR))
    vocab = max(64, 1 << (len(tok) - 1).bit_length())
    out = {}
    for role, layout, s in (("source", "model", seed), ("domain", "causal", seed + 1), ("base", "causal", seed + 2)):
        build_mistral(root / role, seed=s, layout=layout, vocab_size=vocab, hidden_size=hidden,
                      num_hidden_layers=layers, tokenizer=tok)
        out[role] = root / role
    return out


def build_bert_pair(root: Path, with_position_ids: bool = True) -> dict[str, Path]:
    """Two random BertModel checkpoints of one architecture; the source also carries the int64
    `embeddings.position_ids` buffer that older sentence-transformers checkpoints (all-MiniLM-L6-v2) have."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64,
                     max_position_embeddings=64)
    out = {}
    for i, role in enumerate(("source", "domain")):
        torch.manual_seed(100 + i)
        model = BertModel(cfg)
        with torch.no_grad():  # LayerNorms start at 1/0: randomise so both models differ everywhere
            for name, p in model.named_parameters():
                if "LayerNorm" in name:
                    p.add_(0.1 * torch.randn_like(p))
        model.save_pretrained(str(root / role), safe_serialization=True)
        out[role] = root / role
    if with_position_ids:
        f = out["source"] / "model.safetensors"
        state = load_file(str(f))
        state["embeddings.position_ids"] = torch.arange(64, dtype=torch.int64).unsqueeze(0)
        save_file(state, str(f), metadata={"format": "pt"})
    return out


def state(folder: Path) -> dict:
    """Every tensor of a folder's safetensors files, by native key."""
    from safetensors.torch import load_file

    out = {}
    for f in sorted(Path(folder).glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def bits_equal(a, b) -> bool:
    """Same dtype, shape and bytes (torch.equal calls -0.0 and +0.0 equal; this does not)."""
    import torch

    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))


def leftovers(parent: Path) -> list[str]:
    """Temporary folders a failed stage might leave next to --out."""
    return sorted(p.name for p in Path(parent).iterdir() if p.name.startswith("."))
