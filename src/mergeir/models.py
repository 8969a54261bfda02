"""Model checkpoints: pinned download, key layouts, compatibility checks — safetensors only, never pickle.

One module per concept, re-exported here under the names callers have always imported from `mergeir.models`:
key layouts (`layouts`), safetensors weight files (`weights`), opened checkpoints and their compatibility
(`checkpoints`), the pinned download (`download`), and the record of an adapter's base model (`identity`).
"""

from __future__ import annotations

from .checkpoints import Checkpoint, check_compatible, open_checkpoint
from .download import ALLOW_PATTERNS, DOWNLOAD_STAGE, IGNORE_PATTERNS, download_model
from .identity import check_adapter_base
from .layouts import (
    CANONICAL_PREFIX,
    INPUT_EMBEDDINGS,
    LAYER_RE,
    LAYOUTS,
    Layout,
    detect_layout,
    from_canonical,
    key_role,
    to_canonical,
)
from .weights import (
    FINGERPRINT_SAMPLES,
    PICKLE_SUFFIXES,
    ST_DTYPE_BYTES,
    WEIGHT_SUFFIXES,
    read_safetensors_header,
    weight_files,
    weights_fingerprint,
)

__all__ = [
    "ALLOW_PATTERNS", "CANONICAL_PREFIX", "Checkpoint", "DOWNLOAD_STAGE", "FINGERPRINT_SAMPLES", "IGNORE_PATTERNS",
    "INPUT_EMBEDDINGS", "LAYER_RE", "LAYOUTS", "Layout", "PICKLE_SUFFIXES", "ST_DTYPE_BYTES", "WEIGHT_SUFFIXES",
    "check_adapter_base", "check_compatible", "detect_layout", "download_model", "from_canonical", "key_role",
    "open_checkpoint", "read_safetensors_header", "to_canonical", "weight_files", "weights_fingerprint",
]
