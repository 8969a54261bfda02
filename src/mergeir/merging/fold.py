"""A source and its LoRA adapter folded into one model folder: the weights encode.py encodes with --adapter,
written once, with the source's tokenizer and the Sentence Transformers files, so the fine-tuned arm loads like a
merged one (`SentenceTransformer(folder)`)."""

from __future__ import annotations

import os
from pathlib import Path

from ..encoding import load_encoder
from ..encoding.sentence_transformers import plan_export
from ..io import Stage, atomic_dir, write_json
from ..models import describe_model, weights_fingerprint
from ..provenance import tool_versions
from .layerwise import copy_source_files

FOLD_STAGE = Stage("fold", "provenance.json")  # a folded model's provenance.json says "stage": "fold"


def fold_adapter(model_dir: str | os.PathLike, adapter: str | os.PathLike, out: str | os.PathLike, *,
                 pooling: str | None = None, max_length: int | None = None, query_instruction: str | None = None,
                 dtype: str = "float32", force: bool = False) -> dict:
    """The source + LoRA adapter folded into one model folder (the weights encode.py encodes with --adapter),
    with the source's tokenizer files and the Sentence Transformers files; written atomically. Returns the
    provenance."""
    export = plan_export(model_dir, pooling=pooling, max_length=max_length, query_instruction=query_instruction,
                         dtype=dtype)  # bad settings fail before the model loads
    inputs = {"--model": model_dir, "--adapter": adapter}
    with atomic_dir(out, stage=FOLD_STAGE, inputs=inputs, force=force) as tmp:
        model, _ = load_encoder(model_dir, adapter, dtype=dtype, device="cpu")
        model.save_pretrained(str(tmp))
        copy_source_files(Path(model_dir), tmp)
        record = export.write(tmp)
        provenance = {"stage": FOLD_STAGE.name, **describe_model(model_dir, adapter), "dtype": dtype,
                      "model_fingerprint": weights_fingerprint(model_dir),
                      "adapter_fingerprint": weights_fingerprint(adapter, "--adapter"),
                      "sentence_transformers": record, "tools": tool_versions()}
        write_json(tmp / "provenance.json", provenance)
    return provenance
