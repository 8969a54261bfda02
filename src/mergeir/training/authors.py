"""The authors' training files: the zips in tyamamot/modelmerge-for-ir's `data/`, pinned by git blob SHA-1.

A zip (local file or URL, mergeir.fetch) is verified before it is opened; its `.jsonl` members are checked as Tevatron
training files and written verbatim, each with a sidecar naming the zip, its blob id and the member.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import MergeirError
from ..fetch import fetch, is_url
from ..io import Stage, atomic_dir, dumps_json, git_blob_sha1, sha256_file, write_json
from ..provenance import tool_versions
from .data import read_training_set, sidecar_path

AUTHORS_REPO = "tyamamot/modelmerge-for-ir"
AUTHORS_COMMIT = "6a1da1d0ec6215c09bbe947e4b0f240f7eb5dbd6"
# git blob SHA-1 of each zip at AUTHORS_COMMIT (docs/paper.md, "The LoRA baseline")
AUTHORS_ZIPS = {
    "JQaRA.zip": "6dc45d1e308624c09b276a60e98cc77af29d5cc6",
    "MIRACL.zip": "cb04f847a5636b648fdc38410f3709b3ced25fa1",
    "NFCorpus.zip": "949df8ac06214db92631bc4cc1b08027ac87d9b9",
    "SciFact.zip": "821c6fc607e0f708ee89de9c4ffbee17df1c104f",
}
AUTHORS_STAGE = Stage("authors", "authors.json", legacy=("zip", "git_blob_sha1", "files"))
_ALIASES = {"jqara": "JQaRA.zip", "miracl": "MIRACL.zip", "miracl-ja": "MIRACL.zip", "nfcorpus": "NFCorpus.zip",
            "scifact": "SciFact.zip"}


def zip_name(name: str) -> str:
    """'scifact' / 'SciFact' / 'SciFact.zip' -> 'SciFact.zip'."""
    key = name.lower().removesuffix(".zip")
    if key not in _ALIASES:
        raise MergeirError(f"unknown authors' training set {name!r} (choose one of {', '.join(sorted(_ALIASES))})")
    return _ALIASES[key]


def default_url(name: str) -> str:
    return f"https://github.com/{AUTHORS_REPO}/raw/{AUTHORS_COMMIT}/data/{zip_name(name)}"


def verify_zip(path: Path, expected_sha1: str, source: str) -> str:
    got = git_blob_sha1(path)
    if got != expected_sha1:
        head = path.read_bytes()[:64]
        hint = " (it is a Git LFS pointer, not the zip)" if head.startswith(b"version https://git-lfs") else ""
        raise MergeirError(f"--source {source}: git blob SHA-1 {got} != expected {expected_sha1}{hint}")
    return got


def extract_authors(name: str, out: str | Path, *, source: str | None = None, sha1: str | None = None,
                    force: bool = False) -> list[Path]:
    """Verify the authors' zip `name` and write its training files to `out` (+ sidecars, authors.json)."""
    zname = zip_name(name)
    expected = sha1 or AUTHORS_ZIPS[zname]
    source = source or default_url(zname)
    out = Path(out)
    written = []
    local = None if is_url(source) else source
    with atomic_dir(out, stage=AUTHORS_STAGE, inputs={"--source": local}, force=force) as tmp:
        with tempfile.TemporaryDirectory(dir=tmp, prefix=".authors-zip-") as td:  # inside: a kill leaves one folder
            archive = fetch(source, Path(td) / zname)
            if not archive.is_file():
                raise MergeirError(f"--source {source}: not a file (give the zip)")
            blob = verify_zip(archive, expected, source)
            try:
                zf = zipfile.ZipFile(archive)
            except zipfile.BadZipFile:
                raise MergeirError(f"--source {source}: not a zip file") from None
            with zf:
                members = [m for m in zf.infolist() if not m.is_dir() and m.filename.endswith(".jsonl")
                           and not m.filename.startswith("__MACOSX/") and not PurePosixPath(m.filename).name.startswith("._")]
                if not members:
                    raise MergeirError(f"--source {source}: the zip holds no .jsonl training files")
                names = [PurePosixPath(m.filename).name for m in members]
                if len(set(names)) != len(names):
                    raise MergeirError(f"--source {source}: two members share a file name")
                files = []
                for m, fname in zip(members, names):
                    dest = tmp / fname
                    with zf.open(m) as src, open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    examples = read_training_set(dest)
                    side = {
                        "kind": "authors",
                        "collection": zname.removesuffix(".zip"),
                        "source": source,
                        "zip": zname,
                        "git_blob_sha1": blob,
                        "repository": AUTHORS_REPO,
                        "commit": AUTHORS_COMMIT,
                        "member": m.filename,
                        "sha256": sha256_file(dest),
                        "seed": None,
                        "query_ids": [e.query_id for e in examples],
                        "n_queries": len(examples),
                        "n_negatives": {"min": min(len(e.negatives) for e in examples),
                                        "max": max(len(e.negatives) for e in examples),
                                        "total": sum(len(e.negatives) for e in examples)},
                        "tool_versions": tool_versions(),
                    }
                    sidecar_path(dest).write_text(dumps_json(side), encoding="utf-8")
                    files.append({"file": fname, "member": m.filename, "n_queries": len(examples)})
                    written.append(out / fname)
        write_json(tmp / "authors.json", {"stage": AUTHORS_STAGE.name, "zip": zname, "source": source, "git_blob_sha1": blob,
                                          "repository": AUTHORS_REPO, "commit": AUTHORS_COMMIT, "files": files})
    return written
