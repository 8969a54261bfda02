"""Model checkpoints opened for reading (config, key layout, lazy safetensors tensors) and the check that two
of them can be mixed tensor by tensor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..errors import MergeirError
from ..io import read_json, sha256_file
from .layouts import Layout, detect_layout, key_role, to_canonical
from .weights import ST_DTYPE_BYTES, read_safetensors_header, weight_files


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
