"""Encoding texts into L2-normalised embeddings: prompts, tokenization, pooling, batching, the embeddings artifact.

The e5-mistral recipe (docs/paper.md, "Encoding"): sequence = BOS + text + EOS, embedding = hidden state of the last
non-pad token. Under transformers 5 the e5 tokenizer no longer appends EOS, so `last` pooling adds BOS and EOS
itself instead of trusting the tokenizer. Texts are tokenized and length-sorted once (`prepare_texts`) and can
then be encoded by many models (`encode_prepared`) - the alpha sweep re-encodes the same texts 25 times.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .dtypes import torch_dtype
from .errors import MergeirError
from .io import Stage, atomic_dir, read_json, write_json
from .provenance import tool_versions

POOLINGS = ("last", "mean", "cls")
QUERY_FORMAT = "Instruct: {instruction}\nQuery: {query}"
DEFAULT_MAX_LENGTH = 4096  # the authors' evaluation setting for e5-mistral


class _FromCollection:
    def __repr__(self) -> str:
        return "FROM_COLLECTION"


#: `query_instruction` default of the collection-level functions: use collection.json's instruction.
FROM_COLLECTION = _FromCollection()


# ---------------------------------------------------------------- text formatting


def format_query(text: str, instruction: str | None) -> str:
    """`Instruct: {instruction}\\nQuery: {query}` (real newline, space after `Query:`), or the text itself."""
    if instruction:
        return QUERY_FORMAT.format(instruction=instruction, query=text)
    return text


# ---------------------------------------------------------------- tokenization and pooling


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


def pool(hidden, attention_mask, pooling: str):
    """Pool (batch, seq, dim) hidden states: `last` non-pad token, masked `mean`, or first token (`cls`).

    `last` finds the last 1 in the mask, so it is right whichever side was padded.
    """
    _check_pooling(pooling)
    if pooling == "cls":
        return hidden[:, 0]
    import torch

    if pooling == "mean":  # summed in float32: a float16 sum over thousands of tokens overflows
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(dim=1, dtype=torch.float32) / m.sum(dim=1, dtype=torch.float32).clamp(min=1e-9)

    width = attention_mask.shape[1]
    last = width - 1 - attention_mask.flip(dims=[1]).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


# ---------------------------------------------------------------- prepared texts


@dataclass
class Prepared:
    """Texts tokenized once, sorted longest first and cut into padded batches (input_ids, attention_mask): by
    count, or with `max_batch_tokens` by padded-token budget (mergeir.batching).

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
    from .batching import check_budget, cut

    check_budget(batch_size, max_batch_tokens, max_length)
    seqs = token_ids(tokenizer, texts, pooling, max_length)
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    pad = pad_token_id(tokenizer)
    index = cut(lengths, batch_size, max_batch_tokens)
    batches = [_pad([seqs[i] for i in idx], pad) for idx in index]
    return Prepared(pooling, max_length, batch_size, len(seqs), int(lengths.sum()), batches, index, max_batch_tokens)


def _model_device(model):
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover - a model without parameters
        import torch

        return torch.device("cpu")


def _backbone(model):
    """The transformer body whose last_hidden_state we pool: a *ForCausalLM gives its base model."""
    from transformers import PreTrainedModel

    return model.base_model if isinstance(model, PreTrainedModel) else model


def pooled(hidden, mask, pooling: str) -> np.ndarray:
    """L2-normalised float32 embeddings (rows, dim) on the host from a batch's last hidden states."""
    import torch.nn.functional as F

    return F.normalize(pool(hidden, mask, pooling).float(), p=2, dim=-1).cpu().numpy()


def batch_forward(model, pooling: str, device=None):
    """`fn(rows) -> embeddings` for one batch (mergeir.batching.Rows): the encoder's forward and pooling."""
    import torch

    device = torch.device(device) if device is not None else _model_device(model)
    body = _backbone(model)

    def forward(rows):
        ids = rows.ids.to(device, non_blocking=True)
        mask = rows.mask.to(device, non_blocking=True)
        return pooled(body(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state, mask, pooling)

    return forward


def encode_prepared(model, prepared: Prepared, device=None, progress: bool | str = False,
                    forward=None) -> np.ndarray:
    """Embeddings (n, dim), float32, L2-normalised, rows in the order the texts were given. A batch that runs out
    of device memory is halved and goes on (mergeir.batching.Halving); `forward` replaces `batch_forward`."""
    import torch
    from tqdm.auto import tqdm

    from .batching import Halving, Rows

    body = _backbone(model)
    dim = int(getattr(body.config, "hidden_size", 0) or 0)
    out = np.empty((prepared.n, dim), dtype=np.float32) if prepared.n == 0 else None
    run = Halving(forward or batch_forward(model, prepared.pooling, device))
    was_training = body.training
    body.eval()
    desc = progress if isinstance(progress, str) else "encode"
    bar = tqdm(total=prepared.n, desc=desc, unit="text", file=sys.stderr, disable=not progress, leave=False)
    try:
        with torch.inference_mode():
            for (ids, mask), idx in zip(prepared.batches, prepared.index):
                for rows, emb in run(Rows(ids, mask, idx)):
                    if out is None:
                        out = np.empty((prepared.n, emb.shape[1]), dtype=np.float32)
                    out[rows.index] = emb
                bar.update(len(idx))
    finally:
        bar.close()
        body.train(was_training)
    if run.splits:
        print(f"warning: {desc}: out of device memory; batches were halved {run.splits} times and went on",
              file=sys.stderr)
    return out


def encode_texts(model, tokenizer, texts: Sequence[str], pooling: str, max_length: int, batch_size: int,
                 device=None, progress: bool | str = False) -> np.ndarray:
    """`prepare_texts` + `encode_prepared`."""
    return encode_prepared(model, prepare_texts(tokenizer, texts, pooling, max_length, batch_size), device,
                           progress)


# ---------------------------------------------------------------- models


def resolve_device(device: str | None):
    """`auto` (or None) = cuda when available, else cpu; a named device must exist."""
    import torch

    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        d = torch.device(device)
    except (RuntimeError, ValueError):
        raise MergeirError(f"unknown --device {device!r}") from None
    if d.type == "cuda" and not torch.cuda.is_available():
        raise MergeirError(f"--device {device}: CUDA is not available on this machine")
    if d.type == "cuda" and d.index is not None and d.index >= torch.cuda.device_count():
        raise MergeirError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")
    return d


def check_max_length(model, max_length: int | None) -> int:
    """The max length to use: `max_length` if the model's positions allow it, else an error; None =
    min(DEFAULT_MAX_LENGTH, the model's max_position_embeddings)."""
    limit = getattr(_backbone(model).config, "max_position_embeddings", None)
    if max_length is None:
        return DEFAULT_MAX_LENGTH if limit is None else min(DEFAULT_MAX_LENGTH, int(limit))
    if limit is not None and max_length > limit:  # BERT-style absolute positions would fail mid-run
        raise MergeirError(f"--max-length {max_length} exceeds the model's max_position_embeddings ({limit})")
    return max_length


def _has_safetensors(folder: Path) -> bool:
    return any(folder.glob("*.safetensors"))


def check_model_dirs(model_dir: str | Path, adapter: str | Path | None = None) -> None:
    """Cheap checks before anything is loaded: the folders exist and hold safetensors (never pickles)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise MergeirError(f"--model {model_dir}: folder not found")
    if not (model_dir / "config.json").is_file():
        raise MergeirError(f"--model {model_dir}: no config.json (not a Hugging Face model folder)")
    if not _has_safetensors(model_dir):
        raise MergeirError(f"--model {model_dir}: no *.safetensors weights (pickled weights are not loaded)")
    from .models import read_safetensors_header, weight_files

    weight_files(model_dir, "--model")  # every weight file complete (header + data length), not just present
    if adapter is not None:
        adapter = Path(adapter)
        if not adapter.is_dir():
            raise MergeirError(f"--adapter {adapter}: folder not found")
        if not (adapter / "adapter_config.json").is_file():
            raise MergeirError(f"--adapter {adapter}: no adapter_config.json (not a peft adapter folder)")
        if not (adapter / "adapter_model.safetensors").is_file():
            raise MergeirError(f"--adapter {adapter}: no adapter_model.safetensors (pickled adapters are not loaded)")
        read_safetensors_header(adapter / "adapter_model.safetensors")


def load_tokenizer(model_dir: str | Path):
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    try:
        return AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=False)
    except (OSError, ValueError, TypeError) as e:
        raise MergeirError(f"--model {model_dir}: cannot load its tokenizer ({str(e).splitlines()[0]})") from None


def load_encoder(model_dir: str | Path, adapter: str | Path | None = None, dtype: str = "float32",
                 device: str | None = "cpu", check_adapter_base: bool = True):
    """(model, tokenizer): the base transformer of `model_dir` (a *ForCausalLM checkpoint loads as its base
    model, lm_head dropped), safetensors only, no remote code, eval mode; a peft adapter is merged in, after
    checking (unless `check_adapter_base` is off) that it was trained on this model (models.check_adapter_base)."""
    from transformers import AutoModel

    model_dir = Path(model_dir)
    check_model_dirs(model_dir, adapter)
    if adapter is not None and check_adapter_base:
        from .models import check_adapter_base as _check_base

        _check_base(adapter, model_dir)
    weights_dtype = torch_dtype(dtype)
    dev = resolve_device(device)
    tokenizer = load_tokenizer(model_dir)
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report flags a CausalLM's lm_head as unexpected; we check below
    try:
        model, info = AutoModel.from_pretrained(
            str(model_dir), dtype=weights_dtype, use_safetensors=True, trust_remote_code=False,
            output_loading_info=True,
        )
    except (OSError, ValueError, KeyError) as e:
        raise MergeirError(f"--model {model_dir}: cannot load ({str(e).splitlines()[0]})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    missing = list(info.get("missing_keys") or []) + [k for k, *_ in (info.get("mismatched_keys") or [])]
    if missing:  # a silently random-initialised layer would encode garbage
        raise MergeirError(f"--model {model_dir}: weights missing from the checkpoint: {', '.join(missing[:5])}"
                           + (" ..." if len(missing) > 5 else ""))
    if adapter is not None:
        model = merge_adapter(model, adapter)
    model.to(dev)
    model.eval()
    return model, tokenizer


def merge_adapter(model, adapter: str | Path):
    """Load a peft adapter (safetensors only) onto `model` and fold it into the weights (merge_and_unload)."""
    from peft import PeftModel

    adapter = Path(adapter)
    if not (adapter / "adapter_model.safetensors").is_file():
        raise MergeirError(f"--adapter {adapter}: no adapter_model.safetensors (pickled adapters are not loaded)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            peft_model = PeftModel.from_pretrained(model, str(adapter), is_trainable=False)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise MergeirError(f"--adapter {adapter}: cannot load ({str(e).splitlines()[0]})") from None
    for w in caught:  # peft only warns when the adapter's keys do not fit the model: that adapter would be a no-op
        if "missing adapter keys" in str(w.message):
            raise MergeirError(f"--adapter {adapter}: its weights do not match the model's modules "
                               f"({str(w.message)[:200]})")
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    _check_adapter_keys(peft_model, adapter)
    return peft_model.merge_and_unload()


def _check_adapter_keys(peft_model, adapter: Path) -> None:
    """peft ignores adapter tensors the model has no module for (an adapter of a 4-layer model loads onto a
    2-layer one without a word): compare the file's keys with the ones this model expects, both ways."""
    from peft.utils import get_peft_model_state_dict

    from .models import read_safetensors_header

    expected = set(get_peft_model_state_dict(peft_model))
    found = {k for k in read_safetensors_header(adapter / "adapter_model.safetensors") if k != "__metadata__"}
    for what, keys in (("tensors the model has no module for", found - expected),
                       ("no tensor for the model's adapted modules", expected - found)):
        if keys:
            first = sorted(keys)
            raise MergeirError(f"--adapter {adapter} does not fit --model: {len(keys)} {what} (e.g. {first[0]}); "
                               "was it trained on another architecture?")


def _provenance(folder: Path | None) -> dict | None:
    if folder is None:
        return None
    p = Path(folder) / "provenance.json"
    return read_json(p, "provenance file") if p.is_file() else None


def describe_model(model_dir: str | Path, adapter: str | Path | None = None) -> dict:
    """Meta fields naming the encoder: paths, and repo id / revision from provenance.json when present."""
    prov = _provenance(Path(model_dir)) or {}
    aprov = _provenance(Path(adapter)) if adapter is not None else None
    return {
        "model": str(Path(model_dir).resolve()),
        "model_repo_id": prov.get("repo_id"),
        "model_revision": prov.get("revision"),
        "model_provenance": prov or None,
        "adapter": None if adapter is None else str(Path(adapter).resolve()),
        "adapter_provenance": aprov,
    }


# ---------------------------------------------------------------- collections and the embeddings artifact


@dataclass
class Embeddings:
    queries: np.ndarray
    query_ids: list[str]
    corpus: np.ndarray
    corpus_ids: list[str]
    meta: dict


@dataclass
class PreparedSplit:
    """A collection split tokenized once: judged queries and the pool of documents they rank."""

    collection: Any
    split: str
    query_instruction: str | None
    query_ids: list[str]
    corpus_ids: list[str]
    queries: Prepared
    corpus: Prepared


def split_ids(collection, split: str) -> tuple[list[str], list[str]]:
    """(query ids, doc ids) to encode for a split: the queries judged in qrels/<split>.tsv (first-seen order)
    and the documents they rank, in corpus.jsonl order: the docs of candidates/<split>.tsv when the split
    re-ranks candidates, the judged pool when collection.json says so (MIRACL-ja), else the whole corpus."""
    judged = collection.qrels(split)
    qids = [q for q in collection.query_ids(split) if q in judged]
    cands = collection.candidates(split)
    if cands:
        keep = {d for docs in cands.values() for d in docs}
    else:
        pool_ids = collection.pool(split)
        keep = None if pool_ids is None else set(pool_ids)
    dids = list(collection.corpus) if keep is None else [d for d in collection.corpus if d in keep]
    return qids, dids


def prepare_split(tokenizer, collection, split: str | None = None, *, pooling: str, max_length: int,
                  batch_size: int, query_instruction: Any = FROM_COLLECTION,
                  max_batch_tokens: int | None = None) -> PreparedSplit:
    split = split or getattr(collection, "eval_split", None) or "test"
    instruction = collection.query_instruction if query_instruction is FROM_COLLECTION else query_instruction
    instruction = instruction or None
    qids, dids = split_ids(collection, split)
    qtexts = [format_query(collection.queries[q], instruction) for q in qids]
    dtexts = [collection.doc_text(d) for d in dids]  # title + " " + text, or text only, per use_titles
    return PreparedSplit(
        collection, split, instruction, qids, dids,
        prepare_texts(tokenizer, qtexts, pooling, max_length, batch_size, max_batch_tokens),
        prepare_texts(tokenizer, dtexts, pooling, max_length, batch_size, max_batch_tokens),
    )


def encode_split(model, prepared: PreparedSplit, *, device=None, progress: bool = False,
                 extra_meta: dict | None = None) -> Embeddings:
    q = encode_prepared(model, prepared.queries, device, "queries" if progress else False)
    d = encode_prepared(model, prepared.corpus, device, "corpus" if progress else False)
    return split_embeddings(model, prepared, q, d, extra_meta)


def split_embeddings(model, prepared: PreparedSplit, q: np.ndarray, d: np.ndarray,
                     extra_meta: dict | None = None) -> Embeddings:
    """The Embeddings of a prepared split from its query and document vectors, with the artifact's meta."""
    coll = prepared.collection
    dtype = str(next(_backbone(model).parameters()).dtype).replace("torch.", "")
    meta = {
        "model": None, "model_revision": None, "adapter": None,
        **(extra_meta or {}),
        "pooling": prepared.queries.pooling,
        "max_length": prepared.queries.max_length,
        "batch_size": prepared.queries.batch_size,
        **({"max_batch_tokens": prepared.queries.max_batch_tokens} if prepared.queries.max_batch_tokens else {}),
        "dtype": dtype,
        "dim": int(q.shape[1]),
        "split": prepared.split,
        "query_instruction": prepared.query_instruction,
        "query_format": QUERY_FORMAT if prepared.query_instruction else "{query}",
        "use_titles": bool(coll.use_titles),
        "n_queries": len(prepared.query_ids),
        "n_corpus": len(prepared.corpus_ids),
        "n_empty_documents": len(set(getattr(coll, "empty_documents", ())) & set(prepared.corpus_ids)),
        "n_tokens": {"queries": prepared.queries.n_tokens, "corpus": prepared.corpus.n_tokens},
        "collection": coll.name,
        "collection_checksum": coll.checksum,
        "tool_versions": tool_versions(),
    }
    return Embeddings(q, list(prepared.query_ids), d, list(prepared.corpus_ids), meta)


def encode_collection(model, tokenizer, collection, split: str | None = None, *, pooling: str, max_length: int,
                      batch_size: int, query_instruction: Any = FROM_COLLECTION, device=None,
                      progress: bool = False, extra_meta: dict | None = None,
                      max_batch_tokens: int | None = None) -> Embeddings:
    """Embeddings of the split's judged queries and of the documents they rank (`prepare_split` + `encode_split`)."""
    prepared = prepare_split(tokenizer, collection, split, pooling=pooling, max_length=max_length,
                             batch_size=batch_size, query_instruction=query_instruction,
                             max_batch_tokens=max_batch_tokens)
    return encode_split(model, prepared, device=device, progress=progress, extra_meta=extra_meta)


def _write_ids(path: Path, ids: Sequence[str]) -> None:
    for i in ids:
        if not i or "\n" in i or "\r" in i:
            raise MergeirError(f"{path.name}: id {i!r} cannot be written one per line")
    path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")


# the embeddings folder's marker: meta.json names the stage (older ones: the fields every meta.json has)
ENCODE_STAGE = Stage("encode", "meta.json", legacy=("collection_checksum", "n_corpus", "pooling"))


def write_embeddings(out: str | Path, emb: Embeddings, atomic: bool = True) -> Path:
    """Write the embeddings artifact. atomic=True: via a temp folder renamed at the end; atomic=False: into
    `out` directly (for callers already inside their own `atomic_dir`)."""
    if atomic:
        with atomic_dir(out, stage=ENCODE_STAGE) as tmp:
            write_embeddings(tmp, emb, atomic=False)
        return Path(out)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, arr, ids in (("queries", emb.queries, emb.query_ids), ("corpus", emb.corpus, emb.corpus_ids)):
        if arr.shape[0] != len(ids):
            raise MergeirError(f"{name}: {arr.shape[0]} embeddings but {len(ids)} ids")
        np.save(out / f"{name}.npy", np.ascontiguousarray(arr, dtype=np.float32), allow_pickle=False)
        _write_ids(out / f"{name}.ids", ids)
    write_json(out / "meta.json", {**emb.meta, "n_queries": len(emb.query_ids), "n_corpus": len(emb.corpus_ids)})
    return out


def _read_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise MergeirError(f"embeddings file not found: {path}")
    from .io import read_text

    ids = read_text(path).splitlines()
    if len(set(ids)) != len(ids):
        raise MergeirError(f"{path}: duplicate ids")
    return ids


def _read_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise MergeirError(f"embeddings file not found: {path}")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise MergeirError(f"{path}: not a plain .npy array ({e})") from None
    if arr.dtype not in (np.float32, np.float64, np.float16) or arr.ndim != 2:
        raise MergeirError(f"{path}: expected a 2-d float32 array, got {arr.dtype} with shape {arr.shape}")
    if arr.dtype != np.float32:  # another tool's float64/float16: the same vectors in the dtype search uses
        with np.errstate(over="ignore"):
            arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise MergeirError(f"{path}: contains NaN or infinite values (or values beyond float32's range)")
    return arr


def read_embeddings(folder: str | Path) -> Embeddings:
    """Read and check an embeddings folder (shapes agree with ids and meta, same dimension for both sides)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MergeirError(f"embeddings folder not found: {folder}")
    meta = read_json(folder / "meta.json", "embeddings meta")
    q, d = _read_npy(folder / "queries.npy"), _read_npy(folder / "corpus.npy")
    qids, dids = _read_ids(folder / "queries.ids"), _read_ids(folder / "corpus.ids")
    for name, arr, ids in (("queries", q, qids), ("corpus", d, dids)):
        if arr.shape[0] != len(ids):
            raise MergeirError(f"{folder}: {name}.npy has {arr.shape[0]} rows but {name}.ids has {len(ids)} ids")
        if meta.get(f"n_{name}") not in (None, len(ids)):
            raise MergeirError(f"{folder}: meta.json says n_{name}={meta.get(f'n_{name}')}, files hold {len(ids)}")
    if q.shape[1] != d.shape[1]:
        raise MergeirError(f"{folder}: queries are {q.shape[1]}-d but corpus is {d.shape[1]}-d")
    return Embeddings(q, qids, d, dids, meta)
