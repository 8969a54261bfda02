"""LoRA baseline: training sets (mine / authors / trials), group sampling, InfoNCE, schedule, the trainer, Tevatron."""

from __future__ import annotations

import hashlib
import json
import random
import shlex
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers_cli import assert_one_error, run_bin
from helpers_training import TINY_BEIR, embed_one, infonce_reference, one_thread, tiny_training_set

from mergeir.errors import MergeirError
from mergeir.training.data import Passage, TrainingExample, read_sidecar, read_training_set, write_training_set
from mergeir.training.recipe import MISTRAL_TARGETS, Recipe
from mergeir.training.sampling import sample_group

ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
NFCORPUS_INSTRUCTION = "Given a question, retrieve relevant documents that best answer the question"
TOY = dict(group_size=4, per_device_batch=4, grad_accum=1, lr=2e-3, query_max_length=64, passage_max_length=64,
           gradient_checkpointing=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random retriever and its mined training set over tiny-beir's train split (via the CLI)."""
    return tiny_training_set(tmp_path_factory.mktemp("train"))


def _example(qid="q1", n_pos=1, n_neg=0):
    return TrainingExample(
        qid, "a query",
        tuple(Passage(f"p{i}", "", f"pos {i}") for i in range(n_pos)),
        tuple(Passage(f"n{i}", "", f"neg {i}") for i in range(n_neg)),
    )


# ---------------------------------------------------------------- training sets


def test_mine_keeps_the_encoders_top_k_non_relevant_documents(tiny):
    from mergeir.collections import load_collection
    from mergeir.encoding import encode_texts, load_encoder

    coll = load_collection(TINY_BEIR)
    qrels = coll.qrels("train")  # no --split given: the collection's train_split
    examples = read_training_set(tiny["train"])
    side = read_sidecar(tiny["train"])
    assert [e.query_id for e in examples] == side["query_ids"] == [q for q in coll.queries if q in qrels]
    assert side["split"] == "train" and side["k"] == 6 and side["collection_checksum"] == coll.checksum
    assert side["miner"]["model"] == str(tiny["model"]) and side["miner"]["pooling"] == "last"
    assert side["sha256"] == hashlib.sha256(tiny["train"].read_bytes()).hexdigest()

    with one_thread():  # the ranking recomputed by brute force over the whole corpus
        model, tok = load_encoder(tiny["model"])
        dids = list(coll.corpus)
        d = encode_texts(model, tok, [coll.doc_text(x) for x in dids], "last", 64, 8)
        q = encode_texts(model, tok, [coll.queries[e.query_id] for e in examples], "last", 64, 8)
    scores = q @ d.T
    for e, row in zip(examples, scores):
        relevant = {x for x, s in qrels[e.query_id].items() if s > 0}
        assert [p.docid for p in e.positives] == list(qrels[e.query_id])
        ranked = [dids[j] for j in np.argsort(-row, kind="stable") if dids[j] not in relevant]
        assert [p.docid for p in e.negatives] == ranked[:6]
        neg = e.negatives[0]
        assert (neg.title, neg.text) == (coll.corpus[neg.docid]["title"], coll.corpus[neg.docid]["text"])


def test_mine_without_a_labelled_split_fails_cleanly(tiny, tmp_path):
    coll = tmp_path / "coll"
    (coll / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        (coll / name).write_bytes((TINY_BEIR / name).read_bytes())
    (coll / "qrels" / "test.tsv").write_bytes((TINY_BEIR / "qrels" / "test.tsv").read_bytes())
    out = tmp_path / "out" / "train.jsonl"
    p = run_bin("prepare_training.py", "mine", "--collection", coll, "--model", tiny["model"], "--out", out, env=ENV)
    assert_one_error(p, "train_split")
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_trials_are_seeded_samples_recorded_in_their_sidecars(tiny, tmp_path):
    from mergeir.training.trials import sample_trials

    out = tmp_path / "trials"
    run_bin("prepare_training.py", "trials", "--train", tiny["train"], "--out", out, "--trials", 3,
            "--queries", 5, "--seed", 7, check=True, env=ENV)
    source_ids = [e.query_id for e in read_training_set(tiny["train"])]
    source_rows = {json.loads(x)["query_id"]: x for x in tiny["train"].read_text().splitlines()}
    chosen = []
    for i, name in enumerate(["v1", "v2", "v3"]):
        f = out / f"{name}.jsonl"
        side = read_sidecar(f)
        ids = [e.query_id for e in read_training_set(f)]
        assert side["seed"] == 7 + i and side["query_ids"] == ids and len(ids) == 5 == len(set(ids))
        assert ids == sorted(random.Random(7 + i).sample(source_ids, 5), key=source_ids.index)
        assert f.read_text().splitlines() == [source_rows[q] for q in ids]  # rows copied, negatives kept
        assert side["source"]["sha256"] == hashlib.sha256(tiny["train"].read_bytes()).hexdigest()
        chosen.append(ids)
    assert len({tuple(c) for c in chosen}) == 3
    again = tmp_path / "again"
    sample_trials(tiny["train"], again, n=3, m=5, seed=7)  # same seed, same bytes
    for name in ("v1.jsonl", "v2.jsonl", "v3.jsonl", "trials.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes()

    bad = tmp_path / "bad"
    p = run_bin("prepare_training.py", "trials", "--train", tiny["train"], "--out", bad, "--queries", 999, env=ENV)
    assert_one_error(p, "--queries 999")
    assert not bad.exists()


def _authors_zip(tmp_path: Path, rows_file: Path) -> Path:
    z = tmp_path / "SciFact.zip"
    with zipfile.ZipFile(z, "w") as zf:  # the layout `unzip` gives the authors' data/ folder
        zf.writestr("SciFact/", "")
        zf.write(rows_file, "SciFact/scifact-train-809q-all.jsonl")
    return z


def test_authors_zip_is_verified_by_git_blob_sha1_and_extracted_verbatim(tiny, tmp_path):
    from mergeir.training.authors import AUTHORS_ZIPS, extract_authors

    z = _authors_zip(tmp_path, tiny["train"])
    data = z.read_bytes()
    blob = hashlib.sha1(b"blob " + str(len(data)).encode() + b"\0" + data).hexdigest()
    out = tmp_path / "authors"
    extract_authors("scifact", out, source=str(z), sha1=blob)
    f = out / "scifact-train-809q-all.jsonl"
    assert f.read_bytes() == tiny["train"].read_bytes()
    side = read_sidecar(f)
    assert side["git_blob_sha1"] == blob and side["member"] == "SciFact/scifact-train-809q-all.jsonl"
    assert side["query_ids"] == [e.query_id for e in read_training_set(tiny["train"])]

    bad = tmp_path / "bad"  # the pinned SHA-1 of the real SciFact.zip does not match this zip
    p = run_bin("prepare_training.py", "authors", "scifact", "--source", z, "--out", bad, env=ENV)
    assert_one_error(p, AUTHORS_ZIPS["SciFact.zip"], blob)
    assert not bad.exists()


def test_training_set_rows_are_checked(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text('{"query_id": "q1", "query": "x", "positive_passages": [], "negative_passages": []}\n')
    with pytest.raises(MergeirError, match="q1 has no positive_passages"):
        read_training_set(f)
    write_training_set(f, [_example("q1", 1, 2), _example("q2", 2, 0)], {"collection": "c", "seed": None})
    side = read_sidecar(f)
    assert side["query_ids"] == ["q1", "q2"] and side["n_negatives"] == {"min": 0, "max": 2, "total": 2}
    assert read_training_set(f) == [_example("q1", 1, 2), _example("q2", 2, 0)]


# ---------------------------------------------------------------- group sampling


def test_group_sampling_without_replacement_rotates_through_negatives_by_epoch():
    ex = _example("q7", n_pos=2, n_neg=6)
    groups = [sample_group(ex, 4, item=3, epoch=e, seed=42) for e in range(2)]
    for pos, negs in groups:
        assert len(negs) == 3 and len(set(negs)) == 3 and set(negs) <= set(ex.negatives)
    # 2 epochs x 3 negatives walk once through all 6, and each epoch brings the other positive
    assert set(groups[0][1]) | set(groups[1][1]) == set(ex.negatives)
    assert {groups[0][0], groups[1][0]} == set(ex.positives)
    assert sample_group(ex, 4, item=3, epoch=0, seed=42) == groups[0]  # deterministic
    assert any(sample_group(ex, 4, item=3, epoch=0, seed=s)[1] != groups[0][1] for s in range(43, 53))


def test_group_sampling_with_too_few_negatives_samples_with_replacement():
    ex = _example("q2", n_pos=1, n_neg=3)
    pos, negs = sample_group(ex, 16, item=0, epoch=0, seed=1)
    assert pos == ex.positives[0] and len(negs) == 15 and set(negs) <= set(ex.negatives)
    assert len(set(negs)) < len(negs)  # 15 draws from 3: repeats are certain
    assert sample_group(ex, 16, item=0, epoch=0, seed=1) == (pos, negs)
    assert len({tuple(n.docid for n in sample_group(ex, 16, item=0, epoch=0, seed=s)[1]) for s in range(5)}) > 1


def test_group_sampling_without_negatives_names_the_query():
    ex = _example("q-lonely", n_pos=1, n_neg=0)
    with pytest.raises(MergeirError, match="query q-lonely has no negative_passages"):
        sample_group(ex, 16, item=0, epoch=0, seed=0)
    assert sample_group(ex, 1, item=0, epoch=0, seed=0) == (ex.positives[0], [])  # group size 1 needs none


# ---------------------------------------------------------------- loss and schedule


def test_batch_loss_equals_infonce_with_in_batch_negatives(tiny):
    from mergeir.encoding import load_encoder
    from mergeir.training.trainer import build_group_batch, group_loss

    examples = read_training_set(tiny["train"])
    recipe = Recipe(group_size=3, query_max_length=64, passage_max_length=64)
    queries = [e.query for e in examples]
    with one_thread():
        model, tok = load_encoder(tiny["model"])
        q_texts, p_texts = build_group_batch(examples, queries, [0, 5, 9], epoch=0, recipe=recipe)
        got = float(group_loss(model, tok, q_texts, p_texts, recipe))
        want = infonce_reference([embed_one(model, tok, t) for t in q_texts],
                                 [embed_one(model, tok, t) for t in p_texts], 3, 0.01)
    assert len(p_texts) == 9
    assert got == pytest.approx(want, rel=1e-4)


def test_lr_schedule_is_deepspeeds_warmup_decay_lr():
    import torch
    from deepspeed.runtime.lr_schedules import WarmupDecayLR

    from mergeir.training.schedule import warmup_decay_lr

    for warmup_type, warmup, total in (("log", 3, 20), ("linear", 5, 12), ("log", 1, 4)):
        ours_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
        ds_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
        ours = warmup_decay_lr(ours_opt, warmup, total, warmup_type)
        ds = WarmupDecayLR(ds_opt, total_num_steps=total, warmup_min_lr=0.0, warmup_max_lr=1e-4,
                           warmup_num_steps=warmup, warmup_type=warmup_type)
        for _ in range(total + 2):
            assert ours_opt.param_groups[0]["lr"] == pytest.approx(ds_opt.param_groups[0]["lr"], abs=1e-12)
            ours_opt.step(), ds_opt.step(), ours.step(), ds.step()


def test_deepspeed_config_autos_are_filled_from_the_recipe(repo_root):
    from mergeir.training.recipe import DEFAULT_DEEPSPEED
    from mergeir.training.trainer import resolve_deepspeed_config

    assert DEFAULT_DEEPSPEED == repo_root / "conf" / "deepspeed" / "ds_zero3.json"
    raw = json.loads(DEFAULT_DEEPSPEED.read_text())
    cfg = resolve_deepspeed_config(raw, Recipe(), 63, "fp16", hidden_size=4096)
    assert cfg["zero_optimization"]["stage"] == 3
    assert cfg["optimizer"] == {"type": "AdamW", "params": {
        "lr": 1e-4, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0, "torch_adam": True}}
    assert cfg["scheduler"] == {"type": "WarmupDecayLR", "params": {
        "warmup_min_lr": 0.0, "warmup_max_lr": 1e-4, "warmup_num_steps": 7, "total_num_steps": 63,
        "warmup_type": "log"}}
    assert (cfg["train_batch_size"], cfg["train_micro_batch_size_per_gpu"], cfg["gradient_accumulation_steps"]) \
        == (16, 4, 4)
    assert cfg["fp16"]["enabled"] is True and cfg["bf16"]["enabled"] is False and cfg["gradient_clipping"] == 1.0
    assert "auto" not in json.dumps(cfg)


# ---------------------------------------------------------------- the trainer


def _fixed_loss(model, tok, examples, recipe):
    """The loss over all training queries with their epoch-0 groups, eval mode, no gradients."""
    import torch

    from mergeir.training.trainer import build_group_batch, group_loss

    q_texts, p_texts = build_group_batch(examples, [e.query for e in examples], range(len(examples)), epoch=0,
                                         recipe=recipe)
    with torch.no_grad():
        return float(group_loss(model, tok, q_texts, p_texts, recipe))


def test_lora_train_lowers_the_loss_and_saves_an_adapter_that_changes_embeddings(tiny, tmp_path):
    from mergeir.encoding import encode_texts, load_encoder

    out = tmp_path / "adapter"
    run_bin("lora_train.py", "--model", tiny["model"], "--train", tiny["train"], "--out", out, "--max-steps", 30,
            "--group-size", 4, "--per-device-batch", 4, "--grad-accum", 1, "--lr", 2e-3, "--max-length", 64,
            "--no-gradient-checkpointing", "--seed", 3, check=True, env=ENV)
    assert {p.name for p in out.iterdir()} == {"adapter_config.json", "adapter_model.safetensors",
                                               "provenance.json", "train_log.jsonl"}
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert (cfg["r"], cfg["lora_alpha"], cfg["lora_dropout"]) == (16, 64, 0.1)
    assert sorted(cfg["target_modules"]) == sorted(MISTRAL_TARGETS)
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 31)) and all(np.isfinite(r["loss"]) for r in log)
    assert log[0]["lr"] == 0.0 and max(r["lr"] for r in log) == pytest.approx(2e-3)  # log warm-up, then decay
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["train_file"]["sha256"] == hashlib.sha256(tiny["train"].read_bytes()).hexdigest()
    assert prov["train_file"]["sidecar"]["k"] == 6 and prov["recipe"]["seed"] == 3
    assert prov["recipe"]["temperature"] == 0.01 and prov["recipe"]["pooling"] == "last"
    assert prov["base_model"]["model"] == str(tiny["model"]) and prov["tool_versions"]["peft"]

    examples = read_training_set(tiny["train"])
    recipe = Recipe(**TOY)
    texts = [e.query for e in examples[:4]]
    with one_thread():
        base, tok = load_encoder(tiny["model"])
        before = _fixed_loss(base, tok, examples, recipe)
        e0 = encode_texts(base, tok, texts, "last", 64, 4)
        tuned, _ = load_encoder(tiny["model"], adapter=out)  # what encode.py --adapter does
        after = _fixed_loss(tuned, tok, examples, recipe)
        e1 = encode_texts(tuned, tok, texts, "last", 64, 4)
    assert after < 0.5 * before, (before, after)
    assert np.abs(e1 - e0).max() > 1e-3


def test_training_is_deterministic_given_the_seed(tiny, tmp_path):
    from safetensors.numpy import load_file

    from mergeir.training.trainer import train_lora

    recipe = Recipe(**TOY, seed=11)
    with one_thread():
        a = train_lora(tiny["model"], tiny["train"], tmp_path / "a", max_steps=3, recipe=recipe, progress=False)
        b = train_lora(tiny["model"], tiny["train"], tmp_path / "b", max_steps=3, recipe=recipe, progress=False)
    assert a.losses == b.losses
    ta, tb = load_file(tmp_path / "a" / "adapter_model.safetensors"), load_file(tmp_path / "b" / "adapter_model.safetensors")
    assert ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)
    assert any(np.abs(v).max() > 0 for k, v in ta.items() if "lora_B" in k)  # B starts at 0: it moved


def test_adapter_is_refused_on_a_model_of_the_same_name_with_other_weights(tiny, tmp_path):
    """The adapter records its base's weights fingerprint: a model with the base's repo id and revision but
    other weights (a re-upload, a local edit) is refused; the base itself is recognised by it."""
    from helpers_training import build_tiny_retriever
    from mergeir.encoding import load_encoder
    from mergeir.io import write_json
    from mergeir.models import check_adapter_base
    from mergeir.training.trainer import train_lora

    base, other, adapter = tmp_path / "base", tmp_path / "other", tmp_path / "adapter"
    shutil.copytree(tiny["model"], base)
    with one_thread():
        build_tiny_retriever(other, seed=1)  # same tokenizer and shapes, other weights
        for folder in (base, other):
            write_json(folder / "provenance.json", {"repo_id": "mergeir/tiny", "revision": "v1"})
        train_lora(base, tiny["train"], adapter, max_steps=1, recipe=Recipe(**TOY), progress=False)
        assert check_adapter_base(adapter, base) == "weights fingerprint"
        with pytest.raises(MergeirError, match="whose weights differ from --model") as err:
            load_encoder(other, adapter=adapter)  # what encode.py --adapter does
    assert f"--adapter {adapter} was trained on {base.resolve()}," in str(err.value)


def test_lora_train_bad_inputs_leave_nothing(tiny, tmp_path):
    bad = tmp_path / "no-negs.jsonl"
    bad.write_text(json.dumps(_example("q-lonely", 1, 0).to_json()) + "\n")
    out = tmp_path / "out"
    p = run_bin("lora_train.py", "--model", tiny["model"], "--train", bad, "--out", out, "--max-steps", 2, env=ENV)
    assert_one_error(p, "q-lonely")
    assert not out.exists()
    p = run_bin("lora_train.py", "--model", tiny["model"], "--train", tiny["train"], "--out", out, "--max-steps", 2,
                "--backend", "tevatron", env=ENV)
    assert_one_error(p, "tevatron.retriever")
    assert not out.exists()


# ---------------------------------------------------------------- Tevatron


# The authors' README (tyamamot/modelmerge-for-ir @ 6a1da1d), "LoRA Fine-tuning on NFCorpus", full data;
# max_steps 63 from docs/paper.md's step table.
AUTHORS_NFCORPUS = r"""
deepspeed --include localhost:0 --module tevatron.retriever.driver.train \
    --deepspeed deepspeed/ds_zero3_config.json \
    --output_dir nfcorpus_lora_full_data \
    --model_name_or_path intfloat/e5-mistral-7b-instruct \
    --lora \
    --lora_target_modules q_proj,k_proj,v_proj,o_proj,down_proj,up_proj,gate_proj \
    --save_steps 1000 \
    --dataset_path ../data/NFCorpus/nfcorpus-dev-1000q-all.jsonl \
    --query_prefix "Instruct: Given a question, retrieve relevant documents that best answer the question\nQuery:" \
    --fp16 \
    --pooling eos \
    --append_eos_token \
    --normalize \
    --temperature 0.01 \
    --per_device_train_batch_size 4 \
    --gradient_checkpointing \
    --train_group_size 16 \
    --learning_rate 1e-4 \
    --query_max_len 512 \
    --passage_max_len 512 \
    --max_steps 63 \
    --num_train_epochs 1 \
    --logging_steps 1 \
    --overwrite_output_dir \
    --warmup_ratio 0.1 \
    --gradient_accumulation_steps 4
"""


def test_tevatron_command_is_the_authors_nfcorpus_full_data_command():
    from mergeir.training.tevatron import authors_query_prefix, tevatron_command

    want = shlex.split(AUTHORS_NFCORPUS.replace("\\\n", " "))
    prefix = authors_query_prefix(NFCORPUS_INSTRUCTION)
    assert prefix == "Instruct: " + NFCORPUS_INSTRUCTION + "\\nQuery:"  # backslash + n, no trailing space
    got = tevatron_command(
        model="intfloat/e5-mistral-7b-instruct", train_file="../data/NFCorpus/nfcorpus-dev-1000q-all.jsonl",
        out="nfcorpus_lora_full_data", max_steps=63, deepspeed_config="deepspeed/ds_zero3_config.json",
        query_prefix=prefix, recipe=Recipe(), fp16=True,
    )
    assert got == want
    changed = tevatron_command(model="m", train_file="t", out="o", max_steps=4, deepspeed_config="d",
                               query_prefix="", recipe=Recipe(lora_r=8, seed=1), fp16=False)
    assert "--fp16" not in changed and changed[-4:] == ["--lora_r", "8", "--seed", "1"]
