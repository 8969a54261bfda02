"""The one DeepSpeed test of the project: LoRA training through the shipped ZeRO-3 config on CPU (gloo, 1 process).

DeepSpeed compiles its CPU communication op on first use (~2 min), hence `slow`.
"""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from helpers_cli import run_bin
from helpers_training import TINY_BEIR, build_tiny_retriever, one_thread

from mergeir.training.recipe import Recipe
from mergeir.training.schedule import warmup_decay_factor


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_lora_through_deepspeed_zero3_matches_the_plain_loop(tmp_path, repo_root):
    from safetensors.numpy import load_file

    from mergeir.encoding import encode_texts, load_encoder
    from mergeir.training.data import read_training_set
    from mergeir.training.trainer import train_lora

    with one_thread():
        model = build_tiny_retriever(tmp_path / "model")
    train = tmp_path / "train.jsonl"
    env = {"OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port()), "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}
    run_bin("prepare_training.py", "mine", "--collection", TINY_BEIR, "--model", model, "--out", train,
            "--negatives", 6, "--max-length", 64, "--no-progress", check=True, env=env)
    steps, lr = 6, 1e-3
    args = ["--group-size", 4, "--per-device-batch", 4, "--grad-accum", 2, "--max-length", 64, "--lr", lr, "--seed", 5]
    out = tmp_path / "zero3"
    config = repo_root / "conf" / "deepspeed" / "ds_zero3.json"
    run_bin("lora_train.py", "--model", model, "--train", train, "--out", out, "--max-steps", steps,
            "--deepspeed", config, "--device", "cpu", "--no-progress", *args, check=True, env=env, timeout=1200)

    prov = json.loads((out / "provenance.json").read_text())
    resolved = prov["deepspeed"]["resolved"]
    assert resolved["zero_optimization"]["stage"] == 3 and resolved["optimizer"]["type"] == "AdamW"
    assert resolved["scheduler"]["type"] == "WarmupDecayLR" and resolved["scheduler"]["params"]["warmup_type"] == "log"
    assert resolved["fp16"]["enabled"] is False and prov["tool_versions"]["deepspeed"]
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, steps + 1))
    warmup = Recipe(warmup_ratio=0.1).warmup_steps(steps)
    assert [r["lr"] for r in log] == pytest.approx([lr * warmup_decay_factor(s - 2, warmup, steps) for s in
                                                    range(1, steps + 1)])

    # the same recipe in the plain torch loop: ZeRO-3 must not change the optimisation
    recipe = Recipe(group_size=4, per_device_batch=4, grad_accum=2, query_max_length=64, passage_max_length=64,
                    lr=lr, seed=5)
    with one_thread():
        plain = train_lora(model, train, tmp_path / "plain", max_steps=steps, recipe=recipe, progress=False)
    assert [r["loss"] for r in log] == pytest.approx(plain.losses, rel=1e-4)
    z, p = load_file(out / "adapter_model.safetensors"), load_file(tmp_path / "plain" / "adapter_model.safetensors")
    assert z.keys() == p.keys()
    for k in z:  # the gathered ZeRO-3 weights, not empty partitions
        assert z[k].shape == p[k].shape and np.allclose(z[k], p[k], atol=1e-5), k
    assert max(np.abs(v).max() for k, v in z.items() if "lora_B" in k) > 0

    texts = [e.query for e in read_training_set(train)[:4]]
    with one_thread():
        base, tok = load_encoder(model)
        tuned, _ = load_encoder(model, adapter=out)
        assert np.abs(encode_texts(tuned, tok, texts, "last", 64, 4) - encode_texts(base, tok, texts, "last", 64, 4)).max() > 1e-4
