"""Model download at a pinned revision (Hugging Face hub, or a copy of a local folder) with provenance:
safetensors weights, configs and tokenizer files only, and the sha256 of every file.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

from ..errors import MergeirError
from ..io import Stage, atomic_dir, read_json, sha256_file, write_json
from ..provenance import tool_versions
from .checkpoints import open_checkpoint
from .weights import PICKLE_SUFFIXES, WEIGHT_SUFFIXES, weight_files

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
