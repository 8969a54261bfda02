"""Which model a folder holds, as recorded in provenance: the meta fields naming an encoder, and an adapter's
record of the base model it was trained on (written by both training backends, checked when it is applied).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import MergeirError
from ..io import read_json
from .weights import weights_fingerprint


def _provenance(folder: Path | None) -> dict | None:
    if folder is None:
        return None
    p = Path(folder) / "provenance.json"
    return read_json(p, "provenance file") if p.is_file() else None


def describe_model(model_dir: str | Path, adapter: str | Path | None = None) -> dict:
    """Meta fields naming the encoder: paths, and repo id / revision from provenance.json when present."""
    prov = _provenance(Path(model_dir)) or {}
    aprov = _provenance(Path(adapter)) if adapter is not None else None
    return {
        "model": str(Path(model_dir).resolve()),
        "model_repo_id": prov.get("repo_id"),
        "model_revision": prov.get("revision"),
        "model_provenance": prov or None,
        "adapter": None if adapter is None else str(Path(adapter).resolve()),
        "adapter_provenance": aprov,
    }


def base_identity(model_dir) -> dict:
    """An adapter's provenance fields naming its base model, compared by `check_adapter_base` when it is applied."""
    return {"base_model": describe_model(model_dir), "base_model_fingerprint": weights_fingerprint(model_dir)}


def check_adapter_base(adapter: str | os.PathLike, model_dir: str | os.PathLike) -> str:
    """Refuse an adapter trained on another base model than `model_dir`: its provenance.json records the base's
    weights fingerprint (older adapters: repo id and revision). Returns how the identity was established;
    an adapter without a record is accepted with a warning on stderr."""
    adapter, model_dir = Path(adapter), Path(model_dir)
    prov_path = adapter / "provenance.json"
    prov = read_json(prov_path, "adapter provenance") if prov_path.is_file() else None
    base = (prov or {}).get("base_model") if isinstance(prov, dict) else None
    base = base if isinstance(base, dict) else {}
    trained_on = base.get("model") or "an unrecorded model"
    hint = "; pass --no-check-adapter-base to apply it anyway"
    recorded = (prov or {}).get("base_model_fingerprint")
    if recorded:
        if recorded != weights_fingerprint(model_dir):
            raise MergeirError(f"--adapter {adapter} was trained on {trained_on}, whose weights differ from --model "
                               f"{model_dir}{hint}")
        return "weights fingerprint"
    mine = read_json(model_dir / "provenance.json", "model provenance") if (model_dir / "provenance.json").is_file() else {}
    theirs = (base.get("model_repo_id"), base.get("model_revision"))
    ours = (mine.get("repo_id"), mine.get("revision")) if isinstance(mine, dict) else (None, None)
    if None not in theirs and None not in ours:
        if theirs != ours:
            raise MergeirError(f"--adapter {adapter} was trained on {theirs[0]}@{theirs[1]}, but --model {model_dir} "
                               f"is {ours[0]}@{ours[1]}{hint}")
        return "repo id and revision"
    print(f"warning: --adapter {adapter} does not record which model it was trained on; cannot check that it "
          f"fits --model {model_dir}", file=sys.stderr)
    return "unknown"
