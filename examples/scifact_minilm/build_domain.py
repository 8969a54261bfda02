#!/usr/bin/env python3
"""Build the example's "domain model": all-MiniLM-L6-v2 pretrained further with masked language modelling
on the SciFact corpus (domain text, no queries, no relevance labels), saved in the source's key layout.

This plays BioMistral's part in the paper (a same-architecture model trained further on domain text, not for
retrieval). A BERT has no trained MLM head in the retriever checkpoint, so a fresh head is trained first with
the encoder frozen (`--head-steps`), then everything is trained (`--steps`). Only the encoder is kept: the
saved folder is a `BertModel` whose tensors have exactly the source's names (the unused pooler is the
source's own), so merging needs no key mapping. Seeded and CPU-sized; the loss curve goes to provenance.json.
"""

import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bin"))
import _bootstrap  # noqa: F401,E402
import typer  # noqa: E402

from mergeir.cli import make_app, run  # noqa: E402
from mergeir.collections import load_collection  # noqa: E402
from mergeir.errors import MergeirError  # noqa: E402
from mergeir.io import atomic_dir, read_json, sha256_file, write_json  # noqa: E402
from mergeir.provenance import tool_versions  # noqa: E402

app = make_app(__doc__)


def _chunks(tok, texts, max_length):
    """Concatenate the tokenised corpus and cut it into [CLS] chunk [SEP] blocks (BERT-style, no padding)."""
    body = max_length - 2
    ids: list[int] = []
    for t in texts:
        ids.extend(tok(t, add_special_tokens=False)["input_ids"])
        ids.append(tok.sep_token_id)
    n = len(ids) // body
    return [[tok.cls_token_id] + ids[i * body:(i + 1) * body] + [tok.sep_token_id] for i in range(n)]


def _mask(batch, tok, p, gen):
    """BERT masking: p of the non-special tokens are predicted; of those 80% [MASK], 10% random, 10% kept."""
    import torch

    labels = batch.clone()
    special = (batch == tok.cls_token_id) | (batch == tok.sep_token_id)
    chosen = (torch.rand(batch.shape, generator=gen) < p) & ~special
    labels[~chosen] = -100
    r = torch.rand(batch.shape, generator=gen)
    inputs = batch.clone()
    inputs[chosen & (r < 0.8)] = tok.mask_token_id
    rnd = chosen & (r >= 0.8) & (r < 0.9)
    inputs[rnd] = torch.randint(len(tok), batch.shape, generator=gen)[rnd]
    return inputs, labels


@app.command()
def main(
    source: Path = typer.Option(..., help="the source model folder (BertModel, from prepare_source.py)"),
    collection: Path = typer.Option(..., help="collection whose corpus is the domain text"),
    out: Path = typer.Option(..., help="folder to create"),
    steps: int = typer.Option(240, help="optimizer steps with the whole model trained"),
    head_steps: int = typer.Option(60, help="steps before those with the encoder frozen (fresh MLM head)"),
    batch_size: int = typer.Option(16, help="sequences per step"),
    max_length: int = typer.Option(128, help="tokens per sequence, [CLS] and [SEP] included"),
    lr: float = typer.Option(1e-4, help="peak learning rate (linear warm-up 10%, linear decay)"),
    head_lr: float = typer.Option(1e-3, help="learning rate of the head-only steps"),
    mlm_probability: float = typer.Option(0.15),
    seed: int = typer.Option(0),
    log_every: int = typer.Option(20, help="steps per loss line"),
) -> None:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertModel

    if steps < 1 or head_steps < 0 or batch_size < 1 or max_length < 8:
        raise MergeirError("--steps/--batch-size must be >= 1, --head-steps >= 0, --max-length >= 8")
    weights = source / "model.safetensors"
    if not weights.is_file():
        raise MergeirError(f"--source {source}: no model.safetensors")
    config = BertConfig.from_pretrained(str(source))
    if config.model_type != "bert":
        raise MergeirError(f"--source {source}: model_type {config.model_type!r}, expected 'bert'")
    coll = load_collection(collection)
    tok = AutoTokenizer.from_pretrained(str(source))

    random.seed(seed)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    chunks = _chunks(tok, [coll.doc_text(d) for d in coll.corpus], max_length)
    order = list(range(len(chunks)))
    random.Random(seed).shuffle(order)
    total = head_steps + steps
    need = total * batch_size
    schedule = [order[i % len(order)] for i in range(need)]  # wraps into a further epoch if ever needed

    mlm = BertForMaskedLM.from_pretrained(str(source), torch_dtype=torch.float32)  # fresh head, seeded above
    source_state = BertModel.from_pretrained(str(source), torch_dtype=torch.float32).state_dict()
    mlm.train()

    def run_steps(n, params, peak, offset, log, train_encoder):
        opt = torch.optim.AdamW(params, lr=peak, weight_decay=0.01)
        warm = max(1, n // 10)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (n - s) / max(1, n - warm)))
        window = []
        for s in range(n):
            idx = schedule[(offset + s) * batch_size:(offset + s + 1) * batch_size]
            inputs, labels = _mask(torch.tensor([chunks[i] for i in idx]), tok, mlm_probability, gen)
            with torch.set_grad_enabled(train_encoder):
                hidden = mlm.bert(input_ids=inputs).last_hidden_state
            sel = labels != -100  # the vocabulary projection only where a token is predicted: ~7x cheaper
            loss = torch.nn.functional.cross_entropy(mlm.cls(hidden[sel]), labels[sel])
            if not math.isfinite(loss.item()):
                raise MergeirError(f"MLM loss became {loss.item()} at step {offset + s}; lower --lr")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            window.append(loss.item())
            if len(window) == log_every or s == n - 1:
                log.append({"step": offset + s + 1, "loss": round(sum(window) / len(window), 4)})
                print(f"step {offset + s + 1}/{total} loss {log[-1]['loss']:.4f} ({time.time() - t0:.0f}s wall, "
                      f"{time.process_time():.0f}s cpu)", flush=True)
                window = []

    log: list[dict] = []
    head = [p for n, p in mlm.named_parameters() if n.startswith("cls.") and "decoder.weight" not in n]
    if head_steps:
        for p in mlm.bert.parameters():
            p.requires_grad_(False)
        run_steps(head_steps, head, head_lr, 0, log, False)
        for p in mlm.bert.parameters():
            p.requires_grad_(True)
    run_steps(steps, [p for p in mlm.parameters() if p.requires_grad], lr, head_steps, log, True)

    # keep the encoder only, under the source's names (pooler: the source's, unused by mean pooling)
    state = {k: v.detach().contiguous() for k, v in mlm.bert.state_dict().items()}
    for k, v in source_state.items():
        state.setdefault(k, v)
    extra = sorted(set(state) - set(source_state))
    if extra:
        raise MergeirError(f"domain model has keys the source lacks: {extra[:5]}")
    enc = BertModel(config, add_pooling_layer=True)
    enc.load_state_dict(state, strict=True)
    enc.eval()
    with atomic_dir(out) as tmp:
        enc.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        src_prov = source / "provenance.json"
        write_json(tmp / "provenance.json", {
            "repo_id": "mergeir-example/minilm-scifact-mlm",
            "revision": f"seed-{seed}",
            "architecture": "BertModel", "layout": "BertModel",
            "built_by": "examples/scifact_minilm/build_domain.py",
            "recipe": {"objective": "masked LM (BERT 80/10/10)", "mlm_probability": mlm_probability,
                       "head_steps": head_steps, "head_lr": head_lr, "steps": steps, "lr": lr,
                       "batch_size": batch_size, "max_length": max_length, "optimizer": "AdamW wd 0.01",
                       "schedule": "linear warm-up 10%, linear decay", "grad_clip": 1.0, "seed": seed,
                       "sequences_seen": need, "corpus_chunks": len(chunks),
                       "text": "title + ' ' + text of every corpus document, concatenated and chunked"},
            "loss": log,
            "wall_seconds": round(time.time() - t0, 1),
            "inputs": {"source": str(source), "source_weights_sha256": sha256_file(weights),
                       "source_provenance": read_json(src_prov) if src_prov.is_file() else None,
                       "collection": coll.name, "collection_checksum": coll.checksum},
            "tools": tool_versions(),
        })
    print(f"{out}: domain model after {total} MLM steps ({time.time() - t0:.0f}s)")


if __name__ == "__main__":
    run(app)
