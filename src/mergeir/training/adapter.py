"""The LoRA adapter folder both training backends write: its stage marker and its output contract. Its record of
the base model it was trained on is `mergeir.models.base_identity`.
"""

from __future__ import annotations

from ..io import Stage, atomic_dir
from .data import sidecar_path

# an adapter folder's marker: provenance.json says it is a LoRA adapter (both backends write it)
LORA_STAGE = Stage("lora_train", "provenance.json", key="kind", value="lora-adapter")


def adapter_output(out, model_dir, train_file, deepspeed_config=None, force: bool = False):
    """The adapter folder under the output contract (mergeir.io.atomic_dir): never over the base model, the
    training file or its sidecar, or a folder that is not a previous adapter (unless `force`)."""
    inputs = {"--model": model_dir, "--train": [train_file, sidecar_path(train_file)], "--deepspeed": deepspeed_config}
    return atomic_dir(out, stage=LORA_STAGE, inputs=inputs, force=force)
