"""Models: the checkpoints every stage reads — pinned download, key layouts, weights, identity — safetensors only,
never pickle.

`download_model` fetches a Hugging Face repo at a pinned revision (or copies a local folder) with provenance;
`open_checkpoint` opens a model folder (config, key layout, lazy tensors) and `check_compatible` says whether two
can be mixed tensor by tensor; `detect_layout`, `to_canonical`, `from_canonical` and `key_role` map a checkpoint's
key names to one canonical layout per family; `weight_files`, `read_safetensors_header` and `weights_fingerprint`
read a folder's safetensors without decoding a tensor; `describe_model`, `base_identity` and `check_adapter_base`
record which model a folder holds and which base an adapter was trained on; `check_dtype` / `torch_dtype` are the
weight dtypes (`DTYPES`) every stage accepts; `build_mistral` and `build_tokenizer` make the tiny deterministic
models of the tests and the `test` profile.

Modules: `checkpoints`, `layouts`, `weights`, `download`, `identity`, `dtypes`, `tiny`.
"""

from .checkpoints import Checkpoint, check_compatible, open_checkpoint
from .download import ALLOW_PATTERNS, DOWNLOAD_STAGE, IGNORE_PATTERNS, download_model
from .dtypes import DTYPES, check_dtype, torch_dtype
from .identity import base_identity, check_adapter_base, describe_model
from .layouts import (CANONICAL_PREFIX, INPUT_EMBEDDINGS, LAYER_RE, LAYOUTS, Layout, detect_layout, from_canonical,
                      key_role, to_canonical)
from .tiny import MAX_TINY_SIZE, TINY_STAGE, build_mistral, build_tokenizer
from .weights import (FINGERPRINT_SAMPLES, PICKLE_SUFFIXES, ST_DTYPE_BYTES, WEIGHT_SUFFIXES, read_safetensors_header,
                      weight_files, weights_fingerprint)

__all__ = [
    "ALLOW_PATTERNS", "CANONICAL_PREFIX", "Checkpoint", "DOWNLOAD_STAGE", "DTYPES", "FINGERPRINT_SAMPLES",
    "IGNORE_PATTERNS", "INPUT_EMBEDDINGS", "LAYER_RE", "LAYOUTS", "Layout", "MAX_TINY_SIZE", "PICKLE_SUFFIXES",
    "ST_DTYPE_BYTES", "TINY_STAGE", "WEIGHT_SUFFIXES", "base_identity", "build_mistral", "build_tokenizer",
    "check_adapter_base", "check_compatible", "check_dtype", "describe_model", "detect_layout", "download_model",
    "from_canonical",
    "key_role", "open_checkpoint", "read_safetensors_header", "to_canonical", "torch_dtype", "weight_files",
    "weights_fingerprint",
]
