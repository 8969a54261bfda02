"""Sentence Transformers files beside a model folder, so `SentenceTransformer(folder).encode(...)` gives the
embeddings bin/encode.py gives: same token ids, pooling, L2 normalisation, max length and query instruction.

What ST (>= 6; it reads them in this format) finds there: modules.json (Transformer, Pooling, Normalize),
sentence_bert_config.json, 1_Pooling/config.json, 2_Normalize/config.json, and config_sentence_transformers.json,
whose prompt "query" is the instruction's prefix `Instruct: {instruction}\\nQuery: ` (ST prepends a prompt to the
text: `encode(queries, prompt_name="query")` or `encode_query(queries)`; documents get none).

Why the token ids match for `last` pooling: encode.py adds BOS + text (truncated to max_length - 2) + EOS itself
(mergeir.encoding.tokenization.token_ids), because e5-mistral's tokenizer stopped appending EOS under
transformers 5. The tokenizer files are left as they are (encode.py tokenizes with add_special_tokens=False, so it
never sees this); sentence_bert_config.json instead loads ST's tokenizer with add_bos_token / add_eos_token, which
make transformers rebuild its post-processor as BOS $A EOS, and the tokenizer's truncation keeps room for both.
It also pins right padding, a pad token where the tokenizer has none (the id encode.py pads with) and float32
weights (encode.py's default dtype; ST would otherwise load a merge's stored float16). `plan_export` proves the
match on the folder's own tokenizer (`check_token_ids`) before anything is written. The limit: equal to encode.py
in float32 only; loaded in half precision (model_kwargs={"dtype": ...}) ST normalises the pooled vector in half
precision, where encode.py (--dtype float16) normalises it in float32.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import MergeirError
from ..io import read_json, write_json
from ..models import check_dtype
from .loading import DEFAULT_MAX_LENGTH, load_tokenizer
from .tokenization import POOLINGS, format_query, pad_token_id, token_ids

ST_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
            "1_Pooling/config.json", "2_Normalize/config.json")
_ST_POOLING = {"last": "lasttoken", "mean": "mean", "cls": "cls"}
# ST's older boolean keys (all-MiniLM-L6-v2's 1_Pooling/config.json) and its mode names, as encode.py's poolings
_FROM_ST = {"lasttoken": "last", "mean": "mean", "cls": "cls", "pooling_mode_lasttoken": "last",
            "pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
_MODULES = [("", "sentence_transformers.base.modules.transformer.Transformer"),
            ("1_Pooling", "sentence_transformers.sentence_transformer.modules.pooling.Pooling"),
            ("2_Normalize", "sentence_transformers.base.modules.normalize.Normalize")]


def folder_pooling(folder: str | os.PathLike) -> str | None:
    """The pooling the folder's own Sentence Transformers config names (a source's, copied beside a merge), as
    encode.py calls it; None without one. A mode encode.py has no equivalent for (max, weightedmean) is refused."""
    folder = Path(folder)
    if not (folder / "modules.json").is_file():
        return None
    modules = read_json(folder / "modules.json", "sentence-transformers modules.json")
    paths = [m.get("path") for m in (modules if isinstance(modules, list) else [])
             if isinstance(m, dict) and str(m.get("type", "")).endswith("Pooling")]
    if not paths or not isinstance(paths[0], str) or not paths[0] or not (folder / paths[0] / "config.json").is_file():
        return None
    cfg = read_json(folder / paths[0] / "config.json", "sentence-transformers pooling config")
    cfg = cfg if isinstance(cfg, dict) else {}
    mode = cfg.get("pooling_mode")  # a name or names (ST 6); older folders: pooling_mode_* booleans
    modes = [str(m) for m in (mode if isinstance(mode, list) else [mode] if mode is not None else [])]
    modes += [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v is True]
    found = {_FROM_ST.get(m) for m in modes}
    if len(found) != 1 or None in found:
        raise MergeirError(f"{folder}: its sentence-transformers pooling {modes} has no encode.py equivalent "
                           f"({', '.join(POOLINGS)}); give the pooling explicitly")
    return found.pop()


def _settings(folder: Path, pooling: str | None, max_length: int | None) -> tuple[str, int, int]:
    """(pooling, max_length, hidden size), checked: encode.py's defaults where None (pooling: the folder's own ST
    pooling, else last; max length: min(DEFAULT_MAX_LENGTH, max_position_embeddings))."""
    pooling = pooling if pooling is not None else (folder_pooling(folder) or "last")
    if pooling not in POOLINGS:
        raise MergeirError(f"unknown pooling {pooling!r} (choose one of {', '.join(POOLINGS)})")
    config = read_json(folder / "config.json", "model config")
    config = config if isinstance(config, dict) else {}
    dim, limit = config.get("hidden_size"), config.get("max_position_embeddings")
    if not isinstance(dim, int) or dim < 1:
        raise MergeirError(f"{folder}/config.json: no hidden_size, the embedding dimension ST's pooling needs")
    if max_length is None:
        max_length = DEFAULT_MAX_LENGTH if limit is None else min(DEFAULT_MAX_LENGTH, int(limit))
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length <= 0:
        raise MergeirError(f"--max-length must be a positive number of tokens, got {max_length!r}")
    if limit is not None and max_length > limit:
        raise MergeirError(f"--max-length {max_length} exceeds the model's max_position_embeddings ({limit})")
    return pooling, max_length, dim


def st_tokenizer_kwargs(tokenizer, pooling: str, max_length: int) -> dict:
    """What ST's tokenizer is loaded with (sentence_bert_config.json) so it yields encode.py's ids."""
    kwargs = {"model_max_length": max_length, "padding_side": "right"}
    if pooling == "last":  # BOS (when the tokenizer has one, as token_ids) + text + EOS, by the post-processor
        kwargs.update(add_bos_token=tokenizer.bos_token_id is not None, add_eos_token=True)
    if tokenizer.pad_token is None:  # ST pads batches; encode.py pads with eos, else unk (masked out either way)
        kwargs["pad_token"] = tokenizer.convert_ids_to_tokens(pad_token_id(tokenizer))
    return kwargs


def check_token_ids(folder: Path, tokenizer, pooling: str, max_length: int, kwargs: dict,
                    query_instruction: str | None) -> None:
    """ST's tokenizer (the folder's, loaded with `kwargs` as ST will load it) and encode.py's `token_ids` agree on a
    query with its prompt, an empty text and a text longer than max_length (the truncation); else MergeirError."""
    from transformers import AutoTokenizer

    probes = [format_query("what does the merged model retrieve?", query_instruction), "",
              " ".join(["retrieval"] * (max_length + 1))]
    want = token_ids(tokenizer, probes, pooling, max_length)  # refuses an EOS-less tokenizer, too short a length
    got = AutoTokenizer.from_pretrained(str(folder), **kwargs)(probes, truncation="longest_first")["input_ids"]
    for text, w, g in zip(probes, want, got):
        if list(g) != w:
            raise MergeirError(f"{folder}: sentence-transformers would tokenize {text[:40]!r} as {list(g)[:6]}... "
                               f"({len(g)} ids), encode.py as {w[:6]}... ({len(w)}); not exported")


@dataclass(frozen=True)
class Export:
    """Checked settings of one export (`plan_export`), written by `write` into a folder with the same config and
    tokenizer files as the one they were checked on."""

    pooling: str
    max_length: int
    dim: int
    query_prompt: str | None
    dtype: str
    tokenizer_kwargs: dict

    def write(self, folder: str | os.PathLike) -> dict:
        """Write ST_FILES into `folder` (replacing a copied source's); returns what was written, for provenance."""
        folder = Path(folder)
        write_json(folder / "modules.json", [{"idx": i, "name": str(i), "path": path, "type": ref}
                                             for i, (path, ref) in enumerate(_MODULES)])
        write_json(folder / "sentence_bert_config.json", {
            "transformer_task": "feature-extraction",
            "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
            "module_output_name": "token_embeddings",
            "processor_kwargs": self.tokenizer_kwargs,
            "model_kwargs": {"dtype": self.dtype},
        })
        write_json(folder / "config_sentence_transformers.json", {
            "model_type": "SentenceTransformer", "prompts": {"query": self.query_prompt or "", "document": ""},
            "default_prompt_name": None, "similarity_fn_name": "cosine",
        })
        for sub in ("1_Pooling", "2_Normalize"):
            (folder / sub).mkdir(exist_ok=True)
        write_json(folder / "1_Pooling" / "config.json", {
            "embedding_dimension": self.dim, "pooling_mode": _ST_POOLING[self.pooling], "include_prompt": True})
        write_json(folder / "2_Normalize" / "config.json",
                   {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"})
        return {"files": list(ST_FILES), "requires": "sentence-transformers>=6", "pooling": self.pooling,
                "max_length": self.max_length, "query_prompt": self.query_prompt, "dtype": self.dtype}


def plan_export(folder: str | os.PathLike, *, pooling: str | None = None, max_length: int | None = None,
                query_instruction: str | None = None, dtype: str = "float32") -> Export:
    """Check an export on a model folder (or the source a merge copies config and tokenizer from), writing nothing.
    `pooling` / `max_length` None: encode.py's defaults (`_settings`); `query_instruction`: the collection's
    (collection.json), None or '' for no query prompt; `dtype`: the weights' dtype ST loads them in."""
    folder = Path(folder)
    check_dtype(dtype)
    pooling, max_length, dim = _settings(folder, pooling, max_length)
    tokenizer = load_tokenizer(folder)
    kwargs = st_tokenizer_kwargs(tokenizer, pooling, max_length)
    check_token_ids(folder, tokenizer, pooling, max_length, kwargs, query_instruction)
    prompt = format_query("", query_instruction) or None  # the text before the query: ST prepends it
    return Export(pooling, max_length, dim, prompt, dtype, kwargs)


def write_sentence_transformers_config(folder: str | os.PathLike, **settings) -> dict:
    """`plan_export(folder, **settings).write(folder)`: the ST files of a model folder; returns the record."""
    return plan_export(folder, **settings).write(folder)
