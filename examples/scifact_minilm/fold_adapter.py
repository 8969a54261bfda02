#!/usr/bin/env python3
"""Fold a LoRA adapter into its base retriever (peft merge_and_unload) and save the result as a plain model
folder: safetensors weights with exactly the base's tensor names, its tokenizer, and provenance.json naming
the base and the adapter by sha256. The positive control's domain model is the source retriever fine-tuned
on train queries this way, so bin/sweep.py and bin/merge.py take it like any domain model.

    fold_adapter.py --model OUT/models/source --adapter OUT/adapters/control --out OUT/domains/control/model
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bin"))
import _bootstrap  # noqa: F401,E402
import typer  # noqa: E402

from mergeir.cli import make_app, run  # noqa: E402
from mergeir.encoding import load_encoder  # noqa: E402
from mergeir.errors import MergeirError  # noqa: E402
from mergeir.io import atomic_dir, read_json, sha256_file, write_json  # noqa: E402
from mergeir.provenance import tool_versions  # noqa: E402

app = make_app(__doc__)


def _prov(folder: Path):
    p = folder / "provenance.json"
    return read_json(p, "provenance.json") if p.is_file() else None


@app.command()
def main(
    model: Path = typer.Option(..., help="base retriever folder the adapter was trained on"),
    adapter: Path = typer.Option(..., help="peft adapter folder (bin/lora_train.py --out)"),
    out: Path = typer.Option(..., help="model folder to create"),
    repo_id: str = typer.Option("mergeir-example/minilm-scifact-lora-folded", help="name recorded in provenance"),
) -> None:
    from safetensors.torch import load_file

    if out.resolve() in (model.resolve(), adapter.resolve()):
        raise MergeirError(f"--out {out} is an input folder")
    folded, tok = load_encoder(model, adapter, dtype="float32", device="cpu")
    base = set(load_file(str(model / "model.safetensors")))
    with atomic_dir(out) as tmp:
        folded.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        names = set(load_file(str(tmp / "model.safetensors")))
        # sweep/merge pair tensors by name: a renamed or extra key would not merge. Buffers the base file
        # happens to hold (BERT's position_ids) are not weights and transformers no longer saves them.
        params = {n for n, _ in folded.named_parameters()}
        bad = sorted((names - base) | ((base - names) & params))
        if bad:
            raise MergeirError(f"folded model's tensor names differ from the base's: {bad[:5]}")
        base_prov = _prov(model) or {}
        write_json(tmp / "provenance.json", {
            "repo_id": repo_id, "revision": f"adapter-{sha256_file(adapter / 'adapter_model.safetensors')[:12]}",
            "architecture": base_prov.get("architecture"), "layout": base_prov.get("layout", base_prov.get("architecture")),
            "built_by": "examples/scifact_minilm/fold_adapter.py (peft merge_and_unload)",
            "inputs": {"model": str(model), "model_weights_sha256": sha256_file(model / "model.safetensors"),
                       "model_provenance": base_prov or None, "adapter": str(adapter),
                       "adapter_weights_sha256": sha256_file(adapter / "adapter_model.safetensors"),
                       "adapter_provenance": _prov(adapter)},
            "tools": tool_versions(),
        })
    print(f"{out}: {model.name} with {adapter} folded in")


if __name__ == "__main__":
    run(app)
