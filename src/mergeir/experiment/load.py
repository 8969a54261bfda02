"""load_experiment: the YAML file, its top level, and the section readers in dependency order."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import MergeirError
from .reader import Reader
from .sections import (read_collections, read_encoding, read_evaluation, read_lora, read_merge, read_models,
                       read_settings, read_tiny)
from .specs import FORMAT, Experiment

TOP_KEYS = ("format", "name", "reference", "source_model", "models", "tiny", "collections", "settings", "merge",
            "encoding", "evaluation", "lora")


def _read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise MergeirError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    except UnicodeDecodeError:
        raise MergeirError(f"{path}: not UTF-8 text") from None


def load_experiment(path: str | Path, check_paths: bool = True) -> Experiment:
    """Read and validate an experiment YAML; any problem is one MergeirError naming file and key.

    check_paths: local `path:`s must exist beside the (real, symlinks followed) file. PLAN turns it off: in a
    container only the experiment file itself is mounted, and main.nf checks those paths (checkIfExists)."""
    path = Path(path)
    if not path.is_file():
        raise MergeirError(f"experiment file not found: {path}")
    r = Reader(path)
    raw = r.mapping(_read_yaml(path), "top level")
    unknown = set(raw) - set(TOP_KEYS)
    if unknown:
        r.fail("top level", f"unknown keys {sorted(unknown)} (known: {', '.join(sorted(TOP_KEYS))})")
    fmt = r.get(raw, "format", "", int)
    if fmt != FORMAT:
        r.fail("format", f"this mergeir reads format {FORMAT}, the file says {fmt}")
    name = r.get(raw, "name", "", str)

    models = read_models(r, r.get(raw, "models", "", dict))
    source_model = r.get(raw, "source_model", "", str)
    if source_model not in models:
        r.fail("source_model", f"{source_model!r} is not a key of models ({', '.join(models)})")
    settings = read_settings(r, r.get(raw, "settings", "", dict))
    collections = read_collections(r, r.get(raw, "collections", "", dict), models, source_model, settings,
                                   path.resolve().parent if check_paths else None)
    merge = read_merge(r, r.get(raw, "merge", "", dict), collections)
    encoding = read_encoding(r, r.get(raw, "encoding", "", dict))
    evaluation = read_evaluation(r, raw.get("evaluation"))
    lora = read_lora(r, r.get(raw, "lora", "", dict))
    tiny = read_tiny(r, raw.get("tiny"), models, collections, merge)
    return Experiment(path=path.resolve(), name=name, source_model=source_model, models=models,
                      collections=collections, settings=settings, merge=merge, encoding=encoding,
                      evaluation=evaluation, lora=lora, tiny=tiny, raw=raw)
