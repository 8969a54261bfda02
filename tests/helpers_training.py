"""Shared pieces of the training tests: a tiny e5-like retriever over tiny-beir and an independent InfoNCE."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

from helpers_cli import run_bin

ROOT = Path(__file__).resolve().parents[1]
TINY_BEIR = ROOT / "tests" / "fixtures" / "tiny-beir"


@contextlib.contextmanager
def one_thread():
    """Two shared cores: torch's default of 2 threads spin-waits under load; one thread is many times faster."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def build_tiny_retriever(out: Path, seed: int = 0) -> Path:
    """A random 2-layer MistralModel (e5-mistral's layout) with a word-level tokenizer over tiny-beir."""
    from mergeir.collections import load_collection
    from mergeir.models import build_mistral, build_tokenizer

    coll = load_collection(TINY_BEIR)
    texts = list(coll.queries.values()) + [d["title"] + " " + d["text"] for d in coll.corpus.values()]
    texts.append("Instruct: Given a question, retrieve relevant documents that best answer the question\nQuery:")
    tok = build_tokenizer(texts)
    vocab = max(64, 1 << (len(tok) - 1).bit_length())
    build_mistral(out, seed=seed, layout="model", vocab_size=vocab, num_hidden_layers=2, tokenizer=tok)
    return out


def tiny_training_set(root: Path, negatives: int = 6, max_length: int = 64) -> dict:
    """A tiny random retriever in root/model and its training set mined over tiny-beir's train split (the CLI)."""
    with one_thread():
        model = build_tiny_retriever(root / "model")
    train = root / "train.jsonl"
    run_bin("prepare_training.py", "mine", "--collection", TINY_BEIR, "--model", model, "--out", train,
            "--negatives", negatives, "--max-length", max_length, "--no-progress", check=True,
            env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    return {"root": root, "model": model, "train": train}


def embed_one(model, tokenizer, text: str, pooling: str = "last"):
    """One text alone, no padding: BOS + words + EOS, the last position's state (or the mean), L2-normalised."""
    import torch

    if pooling == "last":
        ids = [tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    else:
        ids = tokenizer(text)["input_ids"]
    with torch.no_grad():
        h = model(input_ids=torch.tensor([ids])).last_hidden_state[0].double()
    v = h[-1] if pooling == "last" else h.mean(dim=0)
    return (v / v.norm()).tolist()


def infonce_reference(q_vecs, p_vecs, group_size: int, temperature: float) -> float:
    """-1/n sum_i log( exp(q_i.p_{i*G} / T) / sum_j exp(q_i.p_j / T) ) over ALL passages j of the batch."""
    total = 0.0
    for i, q in enumerate(q_vecs):
        s = [sum(a * b for a, b in zip(q, p)) / temperature for p in p_vecs]
        m = max(s)
        log_z = m + math.log(sum(math.exp(x - m) for x in s))
        total += log_z - s[i * group_size]
    return total / len(q_vecs)
