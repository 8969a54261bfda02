"""Loading an encoder for inference: device, the model folder's checks, tokenizer and weights (safetensors only,
no remote code), a peft adapter folded in after checking it fits, and the body whose hidden states are pooled.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import MergeirError
from ..models import identity  # a module: load_encoder's `check_adapter_base` flag shadows the function's name
from ..models.dtypes import torch_dtype
from ..models.weights import read_safetensors_header, weight_files

DEFAULT_MAX_LENGTH = 4096  # the authors' evaluation setting for e5-mistral


def model_device(model):
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover - a model without parameters
        import torch

        return torch.device("cpu")


def backbone(model):
    """The transformer body whose last_hidden_state we pool: a *ForCausalLM gives its base model."""
    from transformers import PreTrainedModel

    return model.base_model if isinstance(model, PreTrainedModel) else model


def resolve_device(device: str | None):
    """`auto` (or None) = cuda when available, else cpu; a named device must exist."""
    import torch

    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        d = torch.device(device)
    except (RuntimeError, ValueError):
        raise MergeirError(f"unknown --device {device!r}") from None
    if d.type == "cuda" and not torch.cuda.is_available():
        raise MergeirError(f"--device {device}: CUDA is not available on this machine")
    if d.type == "cuda" and d.index is not None and d.index >= torch.cuda.device_count():
        raise MergeirError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")
    return d


def check_max_length(model, max_length: int | None) -> int:
    """The max length to use: `max_length` if the model's positions allow it, else an error; None =
    min(DEFAULT_MAX_LENGTH, the model's max_position_embeddings)."""
    limit = getattr(backbone(model).config, "max_position_embeddings", None)
    if max_length is None:
        return DEFAULT_MAX_LENGTH if limit is None else min(DEFAULT_MAX_LENGTH, int(limit))
    if limit is not None and max_length > limit:  # BERT-style absolute positions would fail mid-run
        raise MergeirError(f"--max-length {max_length} exceeds the model's max_position_embeddings ({limit})")
    return max_length


def _has_safetensors(folder: Path) -> bool:
    return any(folder.glob("*.safetensors"))


def check_model_dirs(model_dir: str | Path, adapter: str | Path | None = None) -> None:
    """Cheap checks before anything is loaded: the folders exist and hold safetensors (never pickles)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise MergeirError(f"--model {model_dir}: folder not found")
    if not (model_dir / "config.json").is_file():
        raise MergeirError(f"--model {model_dir}: no config.json (not a Hugging Face model folder)")
    if not _has_safetensors(model_dir):
        raise MergeirError(f"--model {model_dir}: no *.safetensors weights (pickled weights are not loaded)")
    weight_files(model_dir, "--model")  # every weight file complete (header + data length), not just present
    if adapter is not None:
        adapter = Path(adapter)
        if not adapter.is_dir():
            raise MergeirError(f"--adapter {adapter}: folder not found")
        if not (adapter / "adapter_config.json").is_file():
            raise MergeirError(f"--adapter {adapter}: no adapter_config.json (not a peft adapter folder)")
        if not (adapter / "adapter_model.safetensors").is_file():
            raise MergeirError(f"--adapter {adapter}: no adapter_model.safetensors (pickled adapters are not loaded)")
        read_safetensors_header(adapter / "adapter_model.safetensors")


def load_tokenizer(model_dir: str | Path):
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    try:
        return AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=False)
    except (OSError, ValueError, TypeError) as e:
        raise MergeirError(f"--model {model_dir}: cannot load its tokenizer ({str(e).splitlines()[0]})") from None


def load_encoder(model_dir: str | Path, adapter: str | Path | None = None, dtype: str = "float32",
                 device: str | None = "cpu", check_adapter_base: bool = True):
    """(model, tokenizer): the base transformer of `model_dir` (a *ForCausalLM checkpoint loads as its base
    model, lm_head dropped), safetensors only, no remote code, eval mode; a peft adapter is merged in, after
    checking (unless `check_adapter_base` is off) that it was trained on this model (identity.check_adapter_base)."""
    from transformers import AutoModel

    model_dir = Path(model_dir)
    check_model_dirs(model_dir, adapter)
    if adapter is not None and check_adapter_base:
        identity.check_adapter_base(adapter, model_dir)
    weights_dtype = torch_dtype(dtype)
    dev = resolve_device(device)
    tokenizer = load_tokenizer(model_dir)
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report flags a CausalLM's lm_head as unexpected; we check below
    try:
        model, info = AutoModel.from_pretrained(
            str(model_dir), dtype=weights_dtype, use_safetensors=True, trust_remote_code=False,
            output_loading_info=True,
        )
    except (OSError, ValueError, KeyError) as e:
        raise MergeirError(f"--model {model_dir}: cannot load ({str(e).splitlines()[0]})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    missing = list(info.get("missing_keys") or []) + [k for k, *_ in (info.get("mismatched_keys") or [])]
    if missing:  # a silently random-initialised layer would encode garbage
        raise MergeirError(f"--model {model_dir}: weights missing from the checkpoint: {', '.join(missing[:5])}"
                           + (" ..." if len(missing) > 5 else ""))
    if adapter is not None:
        model = merge_adapter(model, adapter)
    model.to(dev)
    model.eval()
    return model, tokenizer


def merge_adapter(model, adapter: str | Path):
    """Load a peft adapter (safetensors only) onto `model` and fold it into the weights (merge_and_unload)."""
    from peft import PeftModel

    adapter = Path(adapter)
    if not (adapter / "adapter_model.safetensors").is_file():
        raise MergeirError(f"--adapter {adapter}: no adapter_model.safetensors (pickled adapters are not loaded)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            peft_model = PeftModel.from_pretrained(model, str(adapter), is_trainable=False)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise MergeirError(f"--adapter {adapter}: cannot load ({str(e).splitlines()[0]})") from None
    for w in caught:  # peft only warns when the adapter's keys do not fit the model: that adapter would be a no-op
        if "missing adapter keys" in str(w.message):
            raise MergeirError(f"--adapter {adapter}: its weights do not match the model's modules "
                               f"({str(w.message)[:200]})")
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    _check_adapter_keys(peft_model, adapter)
    return peft_model.merge_and_unload()


def _check_adapter_keys(peft_model, adapter: Path) -> None:
    """peft ignores adapter tensors the model has no module for (an adapter of a 4-layer model loads onto a
    2-layer one without a word): compare the file's keys with the ones this model expects, both ways."""
    from peft.utils import get_peft_model_state_dict

    expected = set(get_peft_model_state_dict(peft_model))
    found = {k for k in read_safetensors_header(adapter / "adapter_model.safetensors") if k != "__metadata__"}
    for what, keys in (("tensors the model has no module for", found - expected),
                       ("no tensor for the model's adapted modules", expected - found)):
        if keys:
            first = sorted(keys)
            raise MergeirError(f"--adapter {adapter} does not fit --model: {len(keys)} {what} (e.g. {first[0]}); "
                               "was it trained on another architecture?")

