"""Collections: the BEIR layout mergeir reads (layout.py), writes (writer.py) and builds from upstream
releases (beir.py, miracl.py, jqara.py, dispatched by prepare.py). The names below are the package's interface."""

from .beir import BEIR_MD5, BEIR_URL
from .jqara import JQARA_REVISION, JQARA_URL
from .layout import COLLECTION_JSON, Collection, Qrels, combined_checksum, load_collection
from .miracl import MIRACL_CORPUS_URL, MIRACL_QRELS_URL, MIRACL_TOPICS_URL
from .prepare import DOWNLOAD_STAGE, NAMES, prepare_collection
from .upstream import PRESETS
from .writer import write_collection

__all__ = [
    "BEIR_MD5", "BEIR_URL", "COLLECTION_JSON", "Collection", "DOWNLOAD_STAGE", "JQARA_REVISION", "JQARA_URL",
    "MIRACL_CORPUS_URL", "MIRACL_QRELS_URL", "MIRACL_TOPICS_URL", "NAMES", "PRESETS", "Qrels", "combined_checksum",
    "load_collection", "prepare_collection", "write_collection",
]
