"""Model checkpoints: pinned download, key layouts, compatibility checks — safetensors only, never pickle.

The paper's source (e5-mistral) is saved as a bare `MistralModel` (keys `layers.*`, `embed_tokens`, `norm`), its
domain models as `MistralForCausalLM` (keys `model.*`, `lm_head`). Every key is mapped to one *canonical* layout per
family — the names mergekit's own architecture definitions use (`MistralForCausalLM` for Mistral, `BertModel` for
BERT) — so that two checkpoints saved differently are compared and merged tensor by tensor, never by accident.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
import re
import shutil
import struct
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable, Iterator

from .errors import MergeirError
from .io import Stage, atomic_dir, read_json, sha256_file, write_json
from .provenance import tool_versions

# ---------------------------------------------------------------------------------------------------------------
# Layouts


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

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
WEIGHT_SUFFIXES = (".safetensors",) + PICKLE_SUFFIXES + (".h5", ".msgpack", ".gguf", ".onnx")


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


# ---------------------------------------------------------------------------------------------------------------
# Reading checkpoints


ST_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                   "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def read_safetensors_header(path: Path, complete: bool = True) -> dict:
    """The JSON header of a .safetensors file ({name: {dtype, shape, data_offsets}}, `__metadata__`), no tensors.

    `complete` (the default) also checks that the file holds every byte the header promises — each tensor's
    offsets agree with its dtype and shape, and the data ends exactly at the end of the file — so a truncated
    download or copy is refused here, by every stage, before any tensor is read."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise ValueError("file shorter than 8 bytes")
            (n,) = struct.unpack("<Q", raw)
            if n > 100_000_000:
                raise ValueError(f"header length {n} is implausible")
            body = f.read(n)
            if len(body) != n:
                raise ValueError(f"header of {n} bytes is cut short (file truncated)")
            header = json.loads(body)
            size = os.fstat(f.fileno()).st_size
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        if complete:
            _check_data_length(header, size - 8 - n)
        return header
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise MergeirError(f"{path}: not a readable safetensors file ({e})") from None


def _check_data_length(header: dict, data_bytes: int) -> None:
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, stop = (int(x) for x in info["data_offsets"])
            n = ST_DTYPE_BYTES.get(info["dtype"])
            shape = [int(d) for d in info["shape"]]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"tensor {name}: malformed header entry") from None
        if n is not None and stop - start != n * math.prod(shape):
            raise ValueError(f"tensor {name}: {stop - start} data bytes for shape {shape} {info['dtype']}")
        end = max(end, stop)
    if end > data_bytes:
        raise ValueError(f"truncated: the header describes {end} data bytes, the file holds {data_bytes}")
    if end < data_bytes:
        raise ValueError(f"{data_bytes - end} bytes after the last tensor (not a complete safetensors file)")


FINGERPRINT_SAMPLES = 32  # evenly spaced 64 KiB windows of each file's tensor data
_WINDOW = 1 << 16


def weights_fingerprint(folder: str | os.PathLike, what: str = "--model") -> str:
    """A cheap identity of a folder's weights: sha256 over each safetensors file's name, size, header and 32
    evenly spaced 64 KiB windows of its tensor data. Two checkpoints of one architecture with other weights
    differ in it; a full sha256 of a 14 GB model at every encode would take minutes."""
    folder = Path(folder)
    h = hashlib.sha256()
    for name in sorted(set(weight_files(folder, what).values())):
        path = folder / name
        size = path.stat().st_size
        h.update(f"{name}\t{size}\n".encode())
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            h.update(f.read(n))
            start, length = 8 + n, size - 8 - n
            for i in range(FINGERPRINT_SAMPLES):
                f.seek(start + (length - _WINDOW) * i // (FINGERPRINT_SAMPLES - 1) if length > _WINDOW else start)
                h.update(f.read(_WINDOW))
    return h.hexdigest()


def check_adapter_base(adapter: str | os.PathLike, model_dir: str | os.PathLike) -> str:
    """Refuse an adapter trained on another base model than `model_dir`: its provenance.json records the base's
    weights fingerprint (older adapters: repo id and revision). Returns how the identity was established;
    an adapter without a record is accepted with a warning on stderr."""
    adapter, model_dir = Path(adapter), Path(model_dir)
    prov_path = adapter / "provenance.json"
    prov = read_json(prov_path, "adapter provenance") if prov_path.is_file() else None
    base = (prov or {}).get("base_model") if isinstance(prov, dict) else None
    base = base if isinstance(base, dict) else {}
    trained_on = base.get("model") or "an unrecorded model"
    hint = "; pass --no-check-adapter-base to apply it anyway"
    recorded = (prov or {}).get("base_model_fingerprint")
    if recorded:
        if recorded != weights_fingerprint(model_dir):
            raise MergeirError(f"--adapter {adapter} was trained on {trained_on}, whose weights differ from --model "
                               f"{model_dir}{hint}")
        return "weights fingerprint"
    mine = read_json(model_dir / "provenance.json", "model provenance") if (model_dir / "provenance.json").is_file() else {}
    theirs = (base.get("model_repo_id"), base.get("model_revision"))
    ours = (mine.get("repo_id"), mine.get("revision")) if isinstance(mine, dict) else (None, None)
    if None not in theirs and None not in ours:
        if theirs != ours:
            raise MergeirError(f"--adapter {adapter} was trained on {theirs[0]}@{theirs[1]}, but --model {model_dir} "
                               f"is {ours[0]}@{ours[1]}{hint}")
        return "repo id and revision"
    print(f"warning: --adapter {adapter} does not record which model it was trained on; cannot check that it "
          f"fits --model {model_dir}", file=sys.stderr)
    return "unknown"


def weight_files(folder: Path, what: str = "model") -> dict[str, str]:
    """{native key: file name} for the folder's safetensors weights; refuses pickle-only or weightless folders."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json(index, f"{what} safetensors index").get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise MergeirError(f"{index}: no weight_map")
        for name in sorted(set(weight_map.values())):
            if not (folder / name).is_file():
                raise MergeirError(f"{what} {folder}: shard {name} named in model.safetensors.index.json is missing")
            read_safetensors_header(folder / name)  # complete, not just present
        return dict(weight_map)
    files = sorted(p.name for p in folder.glob("*.safetensors"))
    if not files:
        pickles = sorted(p.name for p in folder.iterdir() if p.name.endswith(PICKLE_SUFFIXES))
        if pickles:
            raise MergeirError(
                f"{what} {folder} has only pickle weights ({', '.join(pickles[:3])}); mergeir loads safetensors "
                "only (pickle can run code) — use a revision with *.safetensors or convert it with a trusted tool"
            )
        raise MergeirError(f"{what} {folder}: no model weights (*.safetensors) found")
    key_file: dict[str, str] = {}
    for name in files:
        for key in read_safetensors_header(folder / name):
            if key == "__metadata__":
                continue
            if key in key_file:
                raise MergeirError(f"{what} {folder}: tensor {key} is in both {key_file[key]} and {name}")
            key_file[key] = name
    return key_file


@dataclass
class Checkpoint:
    """A model folder opened for reading: config, layout and a lazy, safetensors-only view of its tensors."""

    path: Path
    what: str
    config: dict
    layout: Layout
    key_file: dict[str, str]  # native key -> safetensors file name
    _handles: dict = field(default_factory=dict, repr=False)

    @property
    def family(self) -> str:
        return self.layout.family

    @property
    def num_layers(self) -> int:
        return int(self.config.get("num_hidden_layers", 0))

    @cached_property
    def headers(self) -> dict[str, dict]:
        out = {}
        for name in sorted(set(self.key_file.values())):
            header = read_safetensors_header(self.path / name)
            out.update({k: v for k, v in header.items() if k != "__metadata__"})
        return out

    @cached_property
    def canonical(self) -> dict[str, str]:
        """{canonical key: native key}, in the checkpoint's own key order."""
        return {to_canonical(k, self.layout): k for k in self.key_file}

    def shape(self, ckey: str) -> tuple[int, ...]:
        return tuple(self.headers[self.canonical[ckey]]["shape"])

    def st_dtype(self, ckey: str) -> str:
        return self.headers[self.canonical[ckey]]["dtype"]

    def nbytes(self) -> int:
        total = 0
        for h in self.headers.values():
            n = ST_DTYPE_BYTES.get(h["dtype"], 4)
            for d in h["shape"]:
                n *= d
            total += n
        return total

    def tensor(self, ckey: str, dtype=None, device: str = "cpu"):
        """One tensor by canonical key, read with safetensors (memory-mapped), optionally cast."""
        from safetensors import safe_open

        native = self.canonical[ckey]
        name = self.key_file[native]
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = safe_open(str(self.path / name), framework="pt", device=device)
        t = handle.get_tensor(native)
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        return t

    def close(self) -> None:
        self._handles.clear()

    def mergeable(self) -> dict[str, tuple[str, int | None]]:
        """{canonical key: role} for the floating-point tensors that a merge mixes."""
        out = {}
        for ckey in self.canonical:
            role = key_role(self.family, ckey)
            if role[0] != "extra" and self.st_dtype(ckey).startswith(("F", "BF")):
                out[ckey] = role
        return out

    def tokenizer_vocab(self) -> dict[str, int] | None:
        """The token -> id map of tokenizer.json (fast tokenizer) or vocab.txt (WordPiece), if either exists."""
        tj = self.path / "tokenizer.json"
        if tj.is_file():
            model = read_json(tj, f"{self.what} tokenizer").get("model", {})
            vocab = model.get("vocab")
            if isinstance(vocab, dict):
                return vocab
            if isinstance(vocab, list):  # unigram: [[piece, score], ...]
                return {p[0]: i for i, p in enumerate(vocab)}
        vt = self.path / "vocab.txt"
        if vt.is_file():
            return {w: i for i, w in enumerate(vt.read_text(encoding="utf-8").splitlines())}
        return None

    def input_record(self) -> dict:
        """What this checkpoint is, for provenance: the download stage's record if present, else file hashes."""
        rec: dict = {"path": str(self.path.resolve()), "layout": self.layout.name}
        prov = self.path / "provenance.json"
        recorded: dict = {}
        if prov.is_file():
            p = read_json(prov, f"{self.what} provenance")
            for k in ("repo_id", "revision", "resolved_revision"):
                if k in p:
                    rec[k] = p[k]
            recorded = {k: v for k, v in (p.get("files") or {}).items() if isinstance(v, dict)}
        files = {}
        for name in sorted(set(self.key_file.values())):
            # the download record's hash is trusted while the size still matches; else hash the file (slow on 14 GB)
            r = recorded.get(name, {})
            if r.get("sha256") and r.get("bytes") == (self.path / name).stat().st_size:
                files[name] = r["sha256"]
            else:
                files[name] = sha256_file(self.path / name)
        rec["weights_sha256"] = files
        return rec


def open_checkpoint(path: str | os.PathLike, what: str = "model") -> Checkpoint:
    """Open a model folder (config.json + safetensors weights), detecting its key layout. `what` names the option."""
    path = Path(path)
    if not path.is_dir():
        raise MergeirError(f"{what} {path}: model folder not found")
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise MergeirError(f"{what} {path}: no config.json (not a Hugging Face model folder)")
    config = read_json(cfg_path, f"{what} config")
    key_file = weight_files(path, what)
    layout = detect_layout(key_file, f"{what} {path}")
    model_type = config.get("model_type")
    if model_type != layout.family:
        raise MergeirError(
            f"{what} {path}: config.json says model_type {model_type!r} but the tensors are a {layout.family} layout"
        )
    return Checkpoint(path=path, what=what, config=config, layout=layout, key_file=key_file)


def check_compatible(source: Checkpoint, other: Checkpoint) -> None:
    """Refuse, before any work, a pair whose tensors cannot be mixed one to one."""
    def where(c: Checkpoint) -> str:
        return f"{c.what} {c.path}"

    if source.family != other.family:
        raise MergeirError(f"{where(other)} is a {other.family} model but {where(source)} is {source.family}")
    for key in ("hidden_size", "num_hidden_layers", "vocab_size", "intermediate_size", "num_attention_heads",
                "num_key_value_heads"):
        a, b = source.config.get(key), other.config.get(key)
        if a != b and not (key == "num_key_value_heads" and None in (a, b)):
            raise MergeirError(f"{where(other)}: {key} is {b} but {source.what}'s is {a}; the models are not mergeable")
    ms, mo = source.mergeable(), other.mergeable()
    # lm_head is optional: a bare MistralModel has none (it is never part of the evaluated model then)
    only_s = sorted(k for k in set(ms) - set(mo) if k != "lm_head.weight")
    only_o = sorted(k for k in set(mo) - set(ms) if k != "lm_head.weight")
    if only_s or only_o:
        k, side = (only_s[0], source.what) if only_s else (only_o[0], other.what)
        raise MergeirError(
            f"tensor {k} exists only in {side} ({len(only_s) + len(only_o)} unmatched); {where(source)} and "
            f"{where(other)} do not have the same architecture"
        )
    for k in ms:
        if k in mo and source.shape(k) != other.shape(k):
            raise MergeirError(f"tensor {k}: shape {list(other.shape(k))} in {where(other)} but "
                               f"{list(source.shape(k))} in {where(source)}")
    vs, vo = source.tokenizer_vocab(), other.tokenizer_vocab()
    if vs is not None and vo is not None and vs != vo:
        diff = sorted(set(vs.items()) ^ set(vo.items()), key=lambda kv: kv[1])[:1]
        detail = f" (e.g. token id {diff[0][1]} {diff[0][0]!r})" if diff else ""
        raise MergeirError(
            f"{where(other)}: its tokenizer vocabulary differs from {source.what}'s{detail}; merged embeddings "
            "would mix different tokens"
        )


# ---------------------------------------------------------------------------------------------------------------
# Download (Hugging Face hub at a pinned revision, or a local folder)

ALLOW_PATTERNS = ["*.safetensors", "*.safetensors.index.json", "*.json", "tokenizer.model", "*.txt", "*.jinja",
                  "*.tiktoken"]
IGNORE_PATTERNS = [f"*{s}" for s in WEIGHT_SUFFIXES if s != ".safetensors"] + [
    "onnx/*", "openvino/*", "*.md", ".git*", ".cache/*"]
_HEX40 = re.compile(r"^[0-9a-f]{40}$")


def _wanted(rel: str) -> bool:
    return any(fnmatch.fnmatch(rel, p) for p in ALLOW_PATTERNS) and not any(
        fnmatch.fnmatch(rel, p) for p in IGNORE_PATTERNS)


def _local_files(source: Path) -> Iterator[tuple[str, Path]]:
    for p in sorted(source.rglob("*")):
        rel = p.relative_to(source).as_posix()
        if any(part.startswith(".") for part in Path(rel).parts) or not p.is_file():
            continue
        yield rel, p


def _snapshot_revision(source: Path) -> str | None:
    """The commit of a Hugging Face cache snapshot folder (`.../snapshots/<sha>`), or of a mergeir download."""
    resolved = source.resolve()
    if resolved.parent.name == "snapshots" and _HEX40.match(resolved.name):
        return resolved.name
    prov = source / "provenance.json"
    if prov.is_file():
        rev = read_json(prov, "provenance").get("resolved_revision")
        if isinstance(rev, str) and _HEX40.match(rev):
            return rev
    return None


def _hub_download(repo_id: str, revision: str, dest: Path) -> str:
    try:
        from huggingface_hub import HfApi, snapshot_download
    except ImportError:  # pragma: no cover - a dependency of transformers
        raise MergeirError("huggingface_hub is not installed; pass --source PATH with a local copy") from None
    try:
        info = HfApi().model_info(repo_id, revision=revision)
    except Exception as e:  # noqa: BLE001 - network, auth and not-found errors all end as one line
        raise MergeirError(
            f"cannot resolve {repo_id}@{revision} on the Hugging Face hub ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); pass --source PATH with a local copy"
        ) from None
    names = [s.rfilename for s in (info.siblings or [])]
    if not any(n.endswith(".safetensors") for n in names):
        pickles = [n for n in names if n.endswith(PICKLE_SUFFIXES)]
        raise MergeirError(
            f"{repo_id}@{info.sha} has no safetensors weights ({', '.join(pickles[:3]) or 'no weights at all'}); "
            "mergeir never loads pickle checkpoints — pick a revision that has *.safetensors"
        )
    try:
        snapshot_download(repo_id, revision=info.sha, local_dir=str(dest), allow_patterns=ALLOW_PATTERNS,
                          ignore_patterns=IGNORE_PATTERNS)
    except Exception as e:  # noqa: BLE001
        raise MergeirError(f"download of {repo_id}@{info.sha} failed ({type(e).__name__}: {e})") from None
    shutil.rmtree(dest / ".cache", ignore_errors=True)  # hub bookkeeping, not part of the model
    return info.sha


DOWNLOAD_STAGE = Stage("download-model", "provenance.json", legacy=("repo_id", "resolved_revision", "files"))


def download_model(repo_id: str, revision: str, out: str | os.PathLike, source: str | os.PathLike | None = None,
                   force: bool = False) -> dict:
    """Fetch `repo_id` at `revision` (or copy the local folder `source`) into `out`: safetensors weights, configs and
    tokenizer files only, plus `provenance.json` (repo id, requested and resolved revision, sha256 of every file).

    A checkpoint without safetensors weights is refused: nothing in mergeir unpickles; every safetensors file is
    checked complete (header and data length) before its sha256 is recorded.
    """
    if not revision:
        raise MergeirError("--revision is required: pin the model to a commit")
    out = Path(out)
    with atomic_dir(out, stage=DOWNLOAD_STAGE, inputs={"--source": source}, force=force) as tmp:
        if source is not None:
            src = Path(source)
            if not src.is_dir():
                raise MergeirError(f"--source {src}: folder not found")
            weight_files(src, "--source")  # refuses pickle-only folders before copying anything
            resolved = _snapshot_revision(src)
            if resolved and _HEX40.match(revision) and resolved != revision:
                raise MergeirError(f"--source {src} is revision {resolved}, not the requested --revision {revision}")
            resolved = resolved or (revision if _HEX40.match(revision) else None)
            for rel, p in _local_files(src):
                if _wanted(rel):
                    (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(p, tmp / rel)  # follows the hub cache's symlinks
            origin = str(src.resolve())
        else:
            resolved = _hub_download(repo_id, revision, tmp)
            origin = "huggingface-hub"
        ckpt = open_checkpoint(tmp, "downloaded model")
        files = {}
        for p in sorted(tmp.rglob("*")):
            if p.is_file():
                files[p.relative_to(tmp).as_posix()] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        record = {
            "stage": DOWNLOAD_STAGE.name,
            "repo_id": repo_id,
            "revision": revision,
            "resolved_revision": resolved,
            "revision_verified": resolved is not None,
            "origin": origin,
            "layout": ckpt.layout.name,
            "family": ckpt.family,
            "architecture": ckpt.layout.architecture,
            "num_hidden_layers": ckpt.num_layers,
            "hidden_size": ckpt.config.get("hidden_size"),
            "vocab_size": ckpt.config.get("vocab_size"),
            "files": files,
            "tools": {**tool_versions(), **_hub_versions()},
        }
        write_json(tmp / "provenance.json", record)
    return record


def _hub_versions() -> dict:
    import importlib.metadata as md

    out = {}
    for dist in ("huggingface_hub", "safetensors"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    return out
