"""BEIR releases -> the layout: scifact/nfcorpus zips (or their extracted folders), pinned by BEIR's published
md5, and `beir:<path>`, any BEIR folder or zip. A zip is read in place (zipfile.Path), never extracted."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from ..errors import MergeirError
from ..fetch import fetch
from ..io import md5_file, sha256_file
from .layout import PathLike, load_collection, read_qrels, read_records
from .upstream import PRESETS, provenance
from .writer import write_collection

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
BEIR_MD5 = {"scifact": "5f7d1de60b170fc8027bb7898e2efca1", "nfcorpus": "a89dba18a62ef92f7d323ec890a0d38d"}


def read_beir(root: PathLike) -> tuple[dict, dict, dict]:
    """Corpus, queries and {split: qrels rows} of a BEIR folder or zip member folder, read as published
    (the lenient readers: write_collection checks the layout)."""
    for name in ("corpus.jsonl", "queries.jsonl", "qrels"):
        if not (root / name).exists():
            raise MergeirError(f"{root}: missing {name} (not a BEIR folder)")
    corpus = read_records(root / "corpus.jsonl", "document", strict=False)
    queries = read_records(root / "queries.jsonl", "query", strict=False)
    qrels = {path.name[:-4]: read_qrels(path, strict=False)
             for path in sorted((root / "qrels").iterdir(), key=lambda path: path.name) if path.name.endswith(".tsv")}
    if not qrels:
        raise MergeirError(f"{root}/qrels: no <split>.tsv files")
    return corpus, queries, qrels


def _beir_root(path: Path, name: str | None) -> PathLike:
    """The folder holding corpus.jsonl: `path` itself, `path/<name>`, or inside a zip (BEIR zips hold `<name>/`)."""
    if path.is_dir():
        for cand in (path, path / name) if name else (path,):
            if (cand / "corpus.jsonl").is_file():
                return cand
        also = f" or {name}/" if name else ""
        raise MergeirError(f"{path}: missing corpus.jsonl (expected a BEIR folder{also})")
    if not zipfile.is_zipfile(path):
        raise MergeirError(f"{path}: neither a BEIR folder nor a zip file")
    archive = zipfile.ZipFile(path)
    tops = sorted({m.split("/")[0] for m in archive.namelist() if m.endswith("/corpus.jsonl") and m.count("/") == 1})
    if name and name in tops:
        top = name
    elif len(tops) == 1:
        top = tops[0]
    else:
        raise MergeirError(f"{path}: expected one <name>/corpus.jsonl inside the zip, found {tops or 'none'}")
    return zipfile.Path(archive, top + "/")


def _file_digests(root: PathLike) -> dict[str, str]:
    if isinstance(root, Path):
        return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}
    return {}


def prepare_beir(out: Path, cache: Path, name: str, source: str | None, check_md5: bool) -> None:
    url = BEIR_URL.format(name=name)
    src = fetch(source or url, cache / f"{name}.zip")
    prov: dict[str, Any] = {"name": name, "origin": source or url}
    if src.is_file():
        md5 = md5_file(src)
        prov.update(md5=md5, md5_published=BEIR_MD5[name], md5_checked=check_md5)
        if check_md5 and md5 != BEIR_MD5[name]:
            raise MergeirError(f"{src}: md5 {md5} differs from BEIR's published {BEIR_MD5[name]} for {name}.zip "
                               "(use --no-check-md5 to accept another copy; its md5 is then recorded)")
    root = _beir_root(src, name)
    if not isinstance(root, Path):
        prov["sha256"] = sha256_file(src)
    else:
        prov.update(md5_checked=False, files_sha256=_file_digests(root))
    corpus, queries, qrels = read_beir(root)
    write_collection(out, corpus=corpus, queries=queries, qrels=qrels, name=name, source=provenance(**prov),
                     **PRESETS[name])


def prepare_beir_local(out: Path, cache: Path, path: str) -> None:
    p = Path(path)
    if not p.exists():
        raise MergeirError(f"beir:{path}: not found")
    root = _beir_root(p, None)
    if isinstance(root, Path):
        # a folder is validated by the loader itself; an existing collection.json keeps its settings
        given = load_collection(root)
        data = {"corpus": given.corpus, "queries": given.queries, "qrels": given._qrels,
                "candidates": given._candidates or None}
        meta = {"name": given.name, "language": given.language, "query_instruction": given.query_instruction,
                "use_titles": given.use_titles, "eval_split": given.eval_split, "train_split": given.train_split,
                "pools": given.pools or None}
        prov = provenance(name=f"beir:{path}", origin=str(p.resolve()), files_sha256=dict(given.checksums))
    else:
        corpus, queries, qrels = read_beir(root)
        data = {"corpus": corpus, "queries": queries, "qrels": qrels}
        meta = {"name": p.stem, "eval_split": "test", "train_split": "train" if "train" in qrels else None}
        prov = provenance(name=f"beir:{path}", origin=str(p.resolve()), sha256=sha256_file(p))
    write_collection(out, **data, source=prov, **meta)
