"""`download.py collection`: build a collection folder, atomically, from a named upstream release."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import MergeirError
from ..fetch import is_url
from ..io import Stage, atomic_dir
from .beir import prepare_beir, prepare_beir_local
from .jqara import JQARA_REVISION, prepare_jqara
from .layout import COLLECTION_JSON, Collection, load_collection
from .miracl import prepare_miracl_ja
from .upstream import PRESETS

NAMES = (*PRESETS, "beir:<path>")
# what `download.py collection` may replace: a folder whose collection.json mergeir wrote (write_collection)
DOWNLOAD_STAGE = Stage("download-collection", COLLECTION_JSON, legacy=("checksums", "source", "splits"))


def prepare_collection(name: str, out: str | os.PathLike, source: str | None = None, check_md5: bool = True,
                       revision: str | None = None, force: bool = False) -> Collection:
    """Build the collection layout for `name` into `out` (atomically) from `source` (local path or URL).

    Without `source` the upstream release is downloaded (BEIR zips, MIRACL and JQaRA from the Hugging Face
    hub at `revision`). BEIR zips are checked against BEIR's published md5 unless `check_md5` is off.
    """
    if name.startswith("beir:"):
        path = name[len("beir:"):]
        if not path:
            raise MergeirError("beir:<path> needs a path to a BEIR folder or zip")
        builder, kwargs = prepare_beir_local, {"path": path}
    elif name in ("scifact", "nfcorpus"):
        builder, kwargs = prepare_beir, {"name": name, "source": source, "check_md5": check_md5}
    elif name == "miracl-ja":
        builder, kwargs = prepare_miracl_ja, {"source": source, "revision": revision or "main"}
    elif name == "jqara":
        builder, kwargs = prepare_jqara, {"source": source, "revision": revision or JQARA_REVISION}
    else:
        raise MergeirError(f"unknown collection '{name}' (known: {', '.join(NAMES)})")
    if name.startswith("beir:") and source:
        raise MergeirError("--source is not used with beir:<path>; the path is the source")

    local = [v for v in (source, kwargs.get("path")) if v and not is_url(v)]
    with tempfile.TemporaryDirectory(prefix="mergeir-download-") as cache, \
            atomic_dir(out, stage=DOWNLOAD_STAGE, inputs={"--source": local}, force=force) as tmp:
        builder(out=tmp, cache=Path(cache), **kwargs)
    return load_collection(out)
