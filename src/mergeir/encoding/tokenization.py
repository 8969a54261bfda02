"""Texts as the encoder sees them: the query prompt, token ids with the pooling's special tokens, and texts
tokenized once into length-sorted padded batches (`Prepared`) that many models can encode.

The e5-mistral recipe (docs/paper.md, "Encoding"): sequence = BOS + text + EOS. Under transformers 5 the e5
tokenizer no longer appends EOS, so `last` pooling adds BOS and EOS itself instead of trusting the tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import MergeirError
from .batching import check_budget, cut

POOLINGS = ("last", "mean", "cls")
QUERY_FORMAT = "Instruct: {instruction}\nQuery: {query}"


def format_query(text: str, instruction: str | None) -> str:
    """`Instruct: {instruction}\\nQuery: {query}` (real newline, space after `Query:`), or the text itself."""
    if instruction:
        return QUERY_FORMAT.format(instruction=instruction, query=text)
    return text


def _check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise MergeirError(f"unknown pooling {pooling!r} (choose one of {', '.join(POOLINGS)})")


def pad_token_id(tokenizer) -> int:
    """The id used for padding: pad, else eos, else unk (Mistral tokenizers ship without a pad token)."""
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id):
        if tid is not None:
            return int(tid)
    raise MergeirError("tokenizer has no pad, eos or unk token to pad with")


def token_ids(tokenizer, texts: Sequence[str], pooling: str, max_length: int) -> list[list[int]]:
    """Unpadded token ids per text, specials included, at most `max_length` each.

    `last`: BOS + text + EOS added here, the text truncated to max_length - 2 (the tokenizer's own specials are
    not trusted: e5-mistral's stopped appending EOS in transformers 5). `mean`/`cls`: the tokenizer's own
    specials (BERT's [CLS] ... [SEP]).
    """
    _check_pooling(pooling)
    texts = list(texts)
    if pooling == "last":
        eos = tokenizer.eos_token_id
        if eos is None:
            raise MergeirError("pooling 'last' needs a tokenizer with an EOS token")
        bos = tokenizer.bos_token_id
        head = [] if bos is None else [int(bos)]  # tokenizers without BOS (e.g. Qwen) get EOS only
        room = max_length - len(head) - 1
        if room < 1:
            raise MergeirError(f"--max-length {max_length} leaves no room for text between BOS and EOS")
        if not texts:
            return []
        enc = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=room)["input_ids"]
        return [head + ids + [int(eos)] for ids in enc]
    if max_length < 2:
        raise MergeirError(f"--max-length {max_length} is too small")
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=True, truncation=True,
                                           max_length=max_length)["input_ids"]]


def _pad(seqs: Sequence[Sequence[int]], pad_id: int):
    """Right-pad to the longest sequence: (input_ids int64, attention_mask int64)."""
    import torch

    width = max((len(s) for s in seqs), default=0)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def tokenize(tokenizer, texts: Sequence[str], pooling: str, max_length: int) -> dict:
    """A right-padded batch {"input_ids", "attention_mask"} (torch int64) built by `token_ids`."""
    ids, mask = _pad(token_ids(tokenizer, texts, pooling, max_length), pad_token_id(tokenizer))
    return {"input_ids": ids, "attention_mask": mask}


@dataclass
class Prepared:
    """Texts tokenized once, sorted longest first and cut into padded batches (input_ids, attention_mask): by
    count, or with `max_batch_tokens` by padded-token budget (mergeir.encoding.batching).

    `index[b]` holds the original positions of batch b's rows, so outputs are scattered back in input order.
    Longest batches first: an out-of-memory error shows up at once, not at the end of a long run.
    """

    pooling: str
    max_length: int
    batch_size: int
    n: int
    n_tokens: int
    batches: list = field(repr=False)
    index: list = field(repr=False)
    max_batch_tokens: int | None = None


def prepare_texts(tokenizer, texts: Sequence[str], pooling: str, max_length: int, batch_size: int,
                  max_batch_tokens: int | None = None) -> Prepared:
    check_budget(batch_size, max_batch_tokens, max_length)
    seqs = token_ids(tokenizer, texts, pooling, max_length)
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    pad = pad_token_id(tokenizer)
    index = cut(lengths, batch_size, max_batch_tokens)
    batches = [_pad([seqs[i] for i in idx], pad) for idx in index]
    return Prepared(pooling, max_length, batch_size, len(seqs), int(lengths.sum()), batches, index, max_batch_tokens)
