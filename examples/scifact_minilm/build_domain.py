#!/usr/bin/env python3
"""Build the example's "domain model": all-MiniLM-L6-v2 pretrained further with masked language modelling
on the SciFact corpus (domain text, no queries, no relevance labels), saved in the source's key layout.

This plays BioMistral's part in the paper (a same-architecture model trained further on domain text, not for
retrieval). A BERT has no trained MLM head in the retriever checkpoint, so a fresh head is trained first with
the encoder frozen (`--head-steps`), then everything is trained (`--steps`). Only the encoder is kept: the
saved folder is a `BertModel` whose tensors have exactly the source's names (the unused pooler is the
source's own), so merging needs no key mapping. Seeded and CPU-sized; the loss curve goes to provenance.json.

`--heldout-docs N` withholds a seeded sample of N documents from training and logs the masked-LM perplexity
on them (fixed masks) before training, after the head-only steps (= the source's encoder) and every
`--eval-every` steps. `--checkpoint DIR` saves model, optimizer and RNG state every `--checkpoint-every`
steps (safetensors + JSON) and resumes from it when re-run with the same recipe; it is removed once the
model is written. With `--heldout-docs 0` and no checkpoint the run is the first study's, step for step.
"""

import math
import random
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Optional

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


def _mlm_loss(mlm, inputs, labels, reduction="mean"):
    import torch

    hidden = mlm.bert(input_ids=inputs).last_hidden_state
    sel = labels != -100  # the vocabulary projection only where a token is predicted: ~7x cheaper
    return torch.nn.functional.cross_entropy(mlm.cls(hidden[sel]), labels[sel], reduction=reduction)


class _Heldout:
    """Masked-LM perplexity on the held-out chunks, with masks drawn once (the same for every evaluation)."""

    def __init__(self, chunks, tok, p, seed, batch_size=32):
        import torch

        gen = torch.Generator().manual_seed(seed)
        self.batches = [_mask(torch.tensor(chunks[i:i + batch_size]), tok, p, gen)
                        for i in range(0, len(chunks), batch_size)]
        self.n_chunks = len(chunks)
        self.n_tokens = int(sum((lab != -100).sum() for _, lab in self.batches))

    def perplexity(self, mlm) -> float:
        import torch

        mlm.eval()
        with torch.no_grad():
            total = sum(float(_mlm_loss(mlm, x, y, "sum")) for x, y in self.batches)
        mlm.train()
        return round(math.exp(total / self.n_tokens), 3)


def _save_checkpoint(ckpt: Path, mlm, opt, gen, meta: dict) -> None:
    import torch
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().clone().contiguous() for k, v in mlm.state_dict().items()}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            tensors[f"opt.{i}.{k}"] = torch.as_tensor(v).clone().contiguous()
    tensors["rng.gen"] = gen.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    with atomic_dir(ckpt) as tmp:
        save_file(tensors, str(tmp / "state.safetensors"))
        write_json(tmp / "state.json", meta)


def _load_checkpoint(ckpt: Path, mlm, opt, gen) -> None:
    import torch
    from safetensors.torch import load_file

    t = load_file(str(ckpt / "state.safetensors"))
    missing, unexpected = mlm.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")},
                                              strict=False)
    if unexpected or [k for k in missing if "decoder" not in k]:  # the decoder is tied to the embeddings
        raise MergeirError(f"{ckpt}: checkpoint does not fit the model ({(unexpected + missing)[:3]})")
    state: dict = {}
    for k, v in t.items():
        if k.startswith("opt."):
            _, i, name = k.split(".", 2)
            state.setdefault(int(i), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})
    gen.set_state(t["rng.gen"])
    torch.set_rng_state(t["rng.torch"])


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
    heldout_docs: int = typer.Option(0, help="documents withheld from training for the perplexity check"),
    heldout_chunks: int = typer.Option(128, help="at most this many held-out blocks are scored"),
    eval_every: int = typer.Option(250, help="steps between held-out perplexity checks"),
    checkpoint: Optional[Path] = typer.Option(None, help="folder for resumable training state"),
    checkpoint_every: int = typer.Option(100, help="steps between checkpoints"),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch [default: torch's]"),
) -> None:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertModel

    if steps < 1 or head_steps < 0 or batch_size < 1 or max_length < 8:
        raise MergeirError("--steps/--batch-size must be >= 1, --head-steps >= 0, --max-length >= 8")
    if heldout_docs < 0 or heldout_chunks < 1 or eval_every < 1 or checkpoint_every < 1:
        raise MergeirError("--heldout-docs must be >= 0; --heldout-chunks/--eval-every/--checkpoint-every >= 1")
    weights = source / "model.safetensors"
    if not weights.is_file():
        raise MergeirError(f"--source {source}: no model.safetensors")
    if checkpoint is not None and checkpoint.resolve() in (out.resolve(), source.resolve()):
        raise MergeirError(f"--checkpoint {checkpoint} must be a folder of its own")
    config = BertConfig.from_pretrained(str(source))
    if config.model_type != "bert":
        raise MergeirError(f"--source {source}: model_type {config.model_type!r}, expected 'bert'")
    coll = load_collection(collection)
    tok = AutoTokenizer.from_pretrained(str(source))
    if threads:
        torch.set_num_threads(threads)

    random.seed(seed)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    t0, c0 = time.time(), time.process_time()
    doc_ids = list(coll.corpus)
    held = set(random.Random(seed + 1).sample(doc_ids, heldout_docs)) if heldout_docs else set()
    chunks = _chunks(tok, [coll.doc_text(d) for d in doc_ids if d not in held], max_length)
    heldout = None
    if held:
        held_chunks = _chunks(tok, [coll.doc_text(d) for d in doc_ids if d in held], max_length)[:heldout_chunks]
        heldout = _Heldout(held_chunks, tok, mlm_probability, seed + 2)
    order = list(range(len(chunks)))
    random.Random(seed).shuffle(order)
    total = head_steps + steps
    need = total * batch_size
    schedule = [order[i % len(order)] for i in range(need)]  # wraps into a further epoch if ever needed
    recipe = {"objective": "masked LM (BERT 80/10/10)", "mlm_probability": mlm_probability,
              "head_steps": head_steps, "head_lr": head_lr, "steps": steps, "lr": lr,
              "batch_size": batch_size, "max_length": max_length, "optimizer": "AdamW wd 0.01",
              "schedule": "linear warm-up 10%, linear decay", "grad_clip": 1.0, "seed": seed,
              "sequences_seen": need, "corpus_chunks": len(chunks), "heldout_docs": heldout_docs,
              "text": "title + ' ' + text of every corpus document, concatenated and chunked"}
    if heldout:
        recipe["heldout"] = {"docs": heldout_docs, "chunks": heldout.n_chunks, "masked_tokens": heldout.n_tokens,
                             "doc_seed": seed + 1, "mask_seed": seed + 2}

    mlm = BertForMaskedLM.from_pretrained(str(source), torch_dtype=torch.float32)  # fresh head, seeded above
    source_state = BertModel.from_pretrained(str(source), torch_dtype=torch.float32).state_dict()
    mlm.train()
    log: list[dict] = []
    ppl: list[dict] = []
    done, spent = 0, {"wall": 0.0, "cpu": 0.0, "resumes": 0}
    full_params = [p for p in mlm.parameters()]

    def make_opt(n, params, peak):
        opt = torch.optim.AdamW(params, lr=peak, weight_decay=0.01)
        warm = max(1, n // 10)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (n - s) / max(1, n - warm)))
        return opt, sched

    def check(step, phase):
        if heldout:
            ppl.append({"step": step, "phase": phase, "perplexity": heldout.perplexity(mlm)})
            print(f"step {step}: held-out masked-LM perplexity {ppl[-1]['perplexity']} ({phase})", flush=True)

    def meta(step):
        return {"recipe": recipe, "step": step, "loss": log, "perplexity": ppl,
                "wall_seconds": round(spent["wall"] + time.time() - t0, 1),
                "cpu_seconds": round(spent["cpu"] + time.process_time() - c0, 1), "resumes": spent["resumes"]}

    def run_steps(n, params, opt, sched, offset, start, train_encoder):
        window = []
        for s in range(start, n):
            idx = schedule[(offset + s) * batch_size:(offset + s + 1) * batch_size]
            inputs, labels = _mask(torch.tensor([chunks[i] for i in idx]), tok, mlm_probability, gen)
            with torch.set_grad_enabled(train_encoder):
                hidden = mlm.bert(input_ids=inputs).last_hidden_state
            sel = labels != -100
            loss = torch.nn.functional.cross_entropy(mlm.cls(hidden[sel]), labels[sel])
            if not math.isfinite(loss.item()):
                raise MergeirError(f"MLM loss became {loss.item()} at step {offset + s}; lower --lr")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            window.append(loss.item())
            step = offset + s + 1
            if len(window) == log_every or s == n - 1:
                log.append({"step": step, "loss": round(sum(window) / len(window), 4)})
                print(f"step {step}/{total} loss {log[-1]['loss']:.4f} ({time.time() - t0:.0f}s wall, "
                      f"{time.process_time() - c0:.0f}s cpu this run)", flush=True)
                window = []
            if train_encoder and (s + 1) % eval_every == 0 and s != n - 1:
                check(step, "training")
            if train_encoder and checkpoint is not None and (s + 1) % checkpoint_every == 0 and s != n - 1:
                if window:  # checkpoints fall on log lines only, so a resumed loss curve has no gap
                    raise MergeirError("--checkpoint-every must be a multiple of --log-every")
                _save_checkpoint(checkpoint, mlm, opt, gen, meta(step))

    opt, sched = make_opt(steps, full_params, lr)
    if checkpoint is not None and (checkpoint / "state.json").is_file():
        state = read_json(checkpoint / "state.json", "checkpoint state.json")
        if state.get("recipe") != recipe:
            raise MergeirError(f"--checkpoint {checkpoint} was written by another recipe; remove it to start over")
        _load_checkpoint(checkpoint, mlm, opt, gen)
        done, log, ppl = state["step"] - head_steps, state["loss"], state["perplexity"]
        spent = {"wall": state["wall_seconds"], "cpu": state["cpu_seconds"], "resumes": state["resumes"] + 1}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # stepping the schedule back to where it stopped
            for _ in range(done):
                sched.step()
        print(f"resumed from {checkpoint} at step {state['step']}/{total}", flush=True)
    else:
        check(0, "source encoder, untrained head")
        head = [p for n, p in mlm.named_parameters() if n.startswith("cls.") and "decoder.weight" not in n]
        if head_steps:
            for p in mlm.bert.parameters():
                p.requires_grad_(False)
            h_opt, h_sched = make_opt(head_steps, head, head_lr)
            run_steps(head_steps, head, h_opt, h_sched, 0, 0, False)
            for p in mlm.bert.parameters():
                p.requires_grad_(True)
            check(head_steps, "source encoder, trained head (before)")
    run_steps(steps, full_params, opt, sched, head_steps, done, True)
    check(total, "after")

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
    final = meta(total)
    with atomic_dir(out) as tmp:
        enc.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        src_prov = source / "provenance.json"
        write_json(tmp / "provenance.json", {
            "repo_id": "mergeir-example/minilm-scifact-mlm",
            "revision": f"seed-{seed}",
            "architecture": "BertModel", "layout": "BertModel",
            "built_by": "examples/scifact_minilm/build_domain.py",
            "recipe": recipe,
            "loss": log,
            **({"perplexity": ppl} if heldout else {}),
            "wall_seconds": final["wall_seconds"],
            **({"cpu_seconds": final["cpu_seconds"], "resumes": final["resumes"]} if checkpoint else {}),
            "inputs": {"source": str(source), "source_weights_sha256": sha256_file(weights),
                       "source_provenance": read_json(src_prov) if src_prov.is_file() else None,
                       "collection": coll.name, "collection_checksum": coll.checksum},
            "tools": tool_versions(),
        })
    if checkpoint is not None:
        shutil.rmtree(checkpoint, ignore_errors=True)
    print(f"{out}: domain model after {total} MLM steps ({final['wall_seconds']:.0f}s wall)")


if __name__ == "__main__":
    run(app)
