"""Collections: the BEIR layout mergeir reads (layout.py), writes (writer.py) and builds from upstream
releases (beir.py, miracl.py, jqara.py, dispatched by prepare.py; bin/download.py collection), and the rule of which
splits nothing may be trained or tuned on (splits.py).

`prepare_collection` builds a named or BEIR collection (`NAMES`, `PRESETS`); `load_collection` reads one
(`Collection`, `Qrels`, `COLLECTION_JSON`, `combined_checksum`); `write_collection` writes one;
`evaluation_splits` names the splits a collection is measured on. The names below are the package's interface."""

from .beir import BEIR_MD5, BEIR_URL
from .jqara import JQARA_REVISION, JQARA_URL
from .layout import COLLECTION_JSON, Collection, Qrels, combined_checksum, load_collection
from .miracl import MIRACL_CORPUS_URL, MIRACL_QRELS_URL, MIRACL_TOPICS_URL
from .prepare import DOWNLOAD_STAGE, NAMES, prepare_collection
from .splits import evaluation_splits
from .upstream import PRESETS
from .writer import write_collection

__all__ = [
    "BEIR_MD5", "BEIR_URL", "COLLECTION_JSON", "Collection", "DOWNLOAD_STAGE", "JQARA_REVISION", "JQARA_URL",
    "MIRACL_CORPUS_URL", "MIRACL_QRELS_URL", "MIRACL_TOPICS_URL", "NAMES", "PRESETS", "Qrels", "combined_checksum",
    "evaluation_splits", "load_collection", "prepare_collection", "write_collection",
]
