"""Running mergekit: the methods, their configuration, and the layout views both checkpoints are shown through.

Why layout views: mergekit 0.1.5 given a `MistralModel` (keys `layers.*`) and a `MistralForCausalLM` (keys
`model.*`) exits 0 and silently writes one model's tensors (or NaN), depending on PYTHONHASHSEED — it orders the
models through a set. Both checkpoints are therefore first shown to mergekit in the canonical layout of
`mergeir.models.layouts` (a temporary folder: re-keyed safetensors headers over the same tensor bytes); mergekit's
output is re-keyed back to the source's layout and verified by `mergeir.merging.merged_weights`.

mergekit 0.1.5's BERT plan crashes (`plan_tensor` concatenates a list with the tuple of aliases of the optional
`embeddings.position_ids`); BERT pairs are merged under a private copy of mergekit's own bert.json without that
int64 buffer (`MergeirBertModel`), and the buffer is copied from the source.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path
from typing import Iterable

from ..errors import MergeirError
from ..models.checkpoints import Checkpoint
from ..models.layouts import CANONICAL_PREFIX, to_canonical
from ..models.weights import read_safetensors_header
from .mixing import Slice

METHODS = ("linear", "slerp", "ties", "task_arithmetic", "dare_ties")
NEEDS_BASE = ("ties", "task_arithmetic", "dare_ties")
NEEDS_DENSITY = ("ties", "dare_ties")
# the architecture name the views declare, so mergekit picks its JSON definition (and never guesses)
MERGEKIT_ARCH = {"mistral": "MistralForCausalLM", "bert": "MergeirBertModel"}

METHOD_HELP = "\n".join([
    "linear: the paper's method. Per slice, weight alpha on the source and 1-alpha on the domain (normalised).",
    "slerp: spherical interpolation per tensor from the source (t=0) towards the domain, t = 1-alpha per slice.",
    "task_arithmetic: base + alpha*(source-base) + (1-alpha)*(domain-base); needs --base (the models' common "
    "ancestor, e.g. Mistral-7B-v0.1).",
    "ties: TIES-merging of the task vectors source-base and domain-base: each trimmed to --density of its "
    "largest-magnitude entries, sign consensus, weights alpha / 1-alpha (normalised); needs --base.",
    "dare_ties: DARE (keep a random --density of each task vector, rescale) + TIES sign consensus, weights "
    "alpha / 1-alpha; needs --base; --seed fixes the random drop.",
])


# ---------------------------------------------------------------------------------------------------------------
# Layout views for mergekit


def _register_bert_architecture() -> None:
    """mergekit's bert.json minus the optional int64 `embeddings.position_ids` whose tuple of aliases crashes its
    planner; registered under a private name the BERT views declare."""
    from importlib import resources

    from mergekit.architecture import json_definitions as jd

    if "MergeirBertModel" in jd.NAME_TO_ARCH:
        return
    data = json.loads(resources.files("mergekit._data.architectures").joinpath("bert.json").read_text())
    data["pre_weights"] = [w for w in data["pre_weights"] if w["name"] != "embeddings.position_ids"]
    data["architectures"] = ["MergeirBertModel"]
    jd.NAME_TO_ARCH["MergeirBertModel"] = [jd._load_architecture_json(json.dumps(data))]


def _rekey_safetensors(src: Path, dst: Path, rename) -> None:
    """Copy a safetensors file with renamed tensors: a new header over the same data bytes (no tensor is decoded;
    data offsets are relative to the end of the header, so they stay valid)."""
    header = read_safetensors_header(src)
    new = {(k if k == "__metadata__" else rename(k)): v for k, v in header.items()}
    raw = json.dumps(new, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(src, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        f.seek(8 + n)
        with open(dst, "wb") as g:
            g.write(struct.pack("<Q", len(raw)))
            g.write(raw)
            shutil.copyfileobj(f, g, 16 << 20)


def write_view(ckpt: Checkpoint, dest: Path, hide: Iterable[str] = ()) -> Path:
    """`ckpt` as mergekit should see it: canonical key names, the canonical architecture in config.json, and an
    index. Files already in canonical layout are symlinked; `hide` (canonical keys) are renamed out of mergekit's
    sight (e.g. the domain's lm_head when the source has none)."""
    dest.mkdir(parents=True)
    hide = set(hide)
    canonical_already = ckpt.layout.prefix == CANONICAL_PREFIX[ckpt.family]
    weight_map = {}
    for name in sorted(set(ckpt.key_file.values())):
        keys = [k for k, f in ckpt.key_file.items() if f == name]
        renamed = {k: _view_key(ckpt, k, hide) for k in keys}
        if canonical_already and all(renamed[k] == k for k in keys):
            os.symlink((ckpt.path / name).resolve(), dest / name)
        else:
            _rekey_safetensors(ckpt.path / name, dest / name, lambda k: _view_key(ckpt, k, hide))
        weight_map.update({renamed[k]: name for k in keys})
    (dest / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    config = dict(ckpt.config)
    config["architectures"] = [MERGEKIT_ARCH[ckpt.family]]
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    return dest


def _view_key(ckpt: Checkpoint, native: str, hide: set[str]) -> str:
    ckey = to_canonical(native, ckpt.layout)
    return "mergeir_hidden." + ckey if ckey in hide else ckey


# ---------------------------------------------------------------------------------------------------------------
# The mergekit configuration


def mergekit_config(method: str, slices: list[Slice], source: str, domain: str, base: str | None, dtype: str,
                    density: float | None) -> dict:
    """The mergekit YAML (as a dict) for one merge; model entries are paths."""
    out_slices = []
    for s in slices:
        rng = [s.start, s.end]
        src = {"model": source, "layer_range": rng}
        dom = {"model": domain, "layer_range": rng}
        entry: dict = {"sources": [src, dom]}
        if method == "linear":
            src["parameters"] = {"weight": s.alpha}
            dom["parameters"] = {"weight": 1.0 - s.alpha}
        elif method == "slerp":
            entry["parameters"] = {"t": 1.0 - s.alpha}
        else:
            src["parameters"] = {"weight": s.alpha}
            dom["parameters"] = {"weight": 1.0 - s.alpha}
            if method in NEEDS_DENSITY:
                src["parameters"]["density"] = density
                dom["parameters"]["density"] = density
            entry["sources"].append({"model": base, "layer_range": rng})
        out_slices.append(entry)
    cfg: dict = {"merge_method": method, "dtype": dtype, "slices": out_slices}
    if method == "slerp":
        cfg["base_model"] = source
    elif method in NEEDS_BASE:
        cfg["base_model"] = base
    return cfg


def config_yaml(cfg: dict, names: dict[str, str]) -> str:
    """The config as written next to the model: view paths replaced by the input folders they show."""
    import yaml

    def sub(x):
        if isinstance(x, dict):
            return {k: sub(v) for k, v in x.items()}
        if isinstance(x, list):
            return [sub(v) for v in x]
        return names.get(x, x) if isinstance(x, str) else x

    head = ("# mergekit configuration used by mergeir (mergekit ran on layout views of these folders: the same\n"
            "# tensors under canonical key names; see provenance.json)\n")
    return head + yaml.safe_dump(sub(cfg), sort_keys=False)


def run_mergekit(cfg: dict, out: Path, seed: int, device: str = "cpu") -> None:
    from mergekit.config import MergeConfiguration
    from mergekit.io.tasks import LoaderCache
    from mergekit.merge import MergeOptions, run_merge

    _register_bert_architecture()
    options = MergeOptions(copy_tokenizer=False, write_model_card=False, quiet=True, random_seed=seed,
                           safe_serialization=True, lazy_unpickle=False, trust_remote_code=False, device=device)
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # mergekit sets the deprecated config.torch_dtype: a warning per merge
    try:
        run_merge(MergeConfiguration.model_validate(cfg), str(out), options)
    except MergeirError:
        raise
    except Exception as e:  # noqa: BLE001 - mergekit's failures become one line naming the stage
        raise MergeirError(f"mergekit failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    finally:
        LoaderCache().loaders.clear()  # its loaders are cached per path in a class-level dict: drop the views'
        hf_logging.set_verbosity(verbosity)

