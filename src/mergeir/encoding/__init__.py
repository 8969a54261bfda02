"""Encoding: a model (and optionally a LoRA adapter) turns a collection split's queries and documents into
L2-normalised embeddings, the artifact evaluation searches (bin/encode.py, bin/gather.py embeddings).

The e5-mistral recipe (docs/paper.md, "Encoding"): sequence = BOS + text + EOS, embedding = the last non-pad token's
hidden state. `load_encoder` / `load_tokenizer` load a model folder for inference (`check_model_dirs`,
`resolve_device`, `check_max_length`, `DEFAULT_MAX_LENGTH`); `format_query` applies the query instruction;
`prepare_texts` / `prepare_split` tokenize and batch texts once (by count or padded-token budget), which
`encode_prepared` / `encode_split` encode with any model (`encode_texts`, `encode_collection`: both steps); `pool` /
`pooled` reduce hidden states (`POOLINGS`); `write_embeddings` / `read_embeddings` are the artifact
(`Embeddings`, `ENCODE_STAGE`). A large corpus is encoded as shards: `check_shard`, `encode_shard`,
`write_shard`, then `gather_embeddings`. The same settings written beside a model folder for Sentence Transformers
(`write_sentence_transformers_config`, checked first by `plan_export`; `folder_pooling` reads a folder's own).

Modules: `loading`, `tokenization`, `batching`, `pooling`, `encode`, `embeddings`, `shards`, `sentence_transformers`.
"""

from .embeddings import ENCODE_STAGE, Embeddings, read_embeddings, write_embeddings
from .encode import (FROM_COLLECTION, PreparedSplit, encode_collection, encode_prepared, encode_split, encode_texts,
                     prepare_split)
from .loading import (DEFAULT_MAX_LENGTH, check_max_length, check_model_dirs, load_encoder, load_tokenizer,
                      resolve_device)
from .pooling import pool, pooled
from .sentence_transformers import ST_FILES, folder_pooling, plan_export, write_sentence_transformers_config
from .shards import check_shard, encode_shard, gather_embeddings, write_shard
from .tokenization import POOLINGS, QUERY_FORMAT, Prepared, format_query, prepare_texts

__all__ = [
    "DEFAULT_MAX_LENGTH", "ENCODE_STAGE", "Embeddings", "FROM_COLLECTION", "POOLINGS", "Prepared", "PreparedSplit",
    "QUERY_FORMAT", "ST_FILES", "check_max_length", "check_model_dirs", "check_shard", "encode_collection",
    "encode_prepared", "encode_shard", "encode_split", "encode_texts", "folder_pooling", "format_query",
    "gather_embeddings", "load_encoder", "load_tokenizer", "plan_export", "pool", "pooled", "prepare_split",
    "prepare_texts", "read_embeddings", "resolve_device", "write_embeddings", "write_sentence_transformers_config",
    "write_shard",
]
