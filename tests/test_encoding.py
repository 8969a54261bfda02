"""Encoding: prompts, BOS+text+EOS and last-token pooling, order after length sorting, adapters, the CLI."""

import json

import numpy as np
import pytest
import torch

from helpers_cli import assert_one_error, run_bin
from mergeir.collections import load_collection
from mergeir.encoding import (FROM_COLLECTION, encode_collection, encode_texts, format_query, load_encoder, pool,
                              prepare_texts, read_embeddings, write_embeddings)
from mergeir.encoding.tokenization import token_ids, tokenize
from mergeir.errors import MergeirError
from mergeir.io import iter_jsonl
from mergeir.models import build_mistral, build_tokenizer

TEXTS = [
    "a short one",
    "Salt intake raises blood pressure in most adults, according to a large cohort study of ten years.",
    "vitamin d",
    "Gene therapy restores vision in mice with retinal degeneration; effects last for months.",
    "one two three four five six",
    "x",
    "Statins lower cholesterol but the effect on mortality in the elderly is debated by many groups.",
    "sleep and memory",
    "Aspirin reduces the risk of colorectal cancer",
    "proteins fold",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_beir):
    """A tiny tokenizer (BOS, no EOS, like e5-mistral under transformers 5) and two tiny Mistrals on disk."""
    root = tmp_path_factory.mktemp("tiny-encode")
    texts = list(TEXTS) + ["Instruct: Find it\nQuery:"]
    for f in ("queries.jsonl", "corpus.jsonl"):
        texts += [o.get("title", "") + " " + o["text"] for _, o in iter_jsonl(tiny_beir / f)]
    tok = build_tokenizer(texts)
    vocab = max(64, 1 << (len(tok) - 1).bit_length())
    build_mistral(root / "model", seed=7, layout="model", vocab_size=vocab, tokenizer=tok)
    build_mistral(root / "causal", seed=8, layout="causal", vocab_size=vocab, tokenizer=tok)
    return root


@pytest.fixture(scope="module")
def encoder(tiny):
    return load_encoder(tiny / "model")


def test_format_query_is_exact():
    assert format_query("does x cause y?", "Given a claim, find evidence") == (
        "Instruct: Given a claim, find evidence\nQuery: does x cause y?"
    )
    assert format_query("does x cause y?", None) == "does x cause y?"
    assert format_query("does x cause y?", "") == "does x cause y?"


def test_last_pooling_pools_the_eos_the_tokenizer_does_not_add(encoder):
    model, tok = encoder
    plain = tok(TEXTS)["input_ids"]
    assert all(ids[0] == tok.bos_token_id and ids[-1] != tok.eos_token_id for ids in plain)  # the trap
    seqs = token_ids(tok, TEXTS, "last", 12)
    for ids, p in zip(seqs, plain):
        assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
        assert ids[1:-1] == p[1 : len(ids) - 1]  # the text, truncated to max_length - 2
        assert len(ids) == min(12, len(p) + 1)
    batch = tokenize(tok, TEXTS, "last", 12)
    assert batch["input_ids"].shape == (len(TEXTS), 12)
    # pooling the token ids themselves shows which position `last` picks: the EOS in every row
    picked = pool(batch["input_ids"].unsqueeze(-1), batch["attention_mask"], "last").squeeze(-1)
    assert picked.tolist() == [tok.eos_token_id] * len(TEXTS)
    # and the embedding is the model's hidden state at that EOS, computed without padding
    emb = encode_texts(model, tok, TEXTS, "last", 12, batch_size=4)
    for i in (0, 1, 5):
        ids = torch.tensor([seqs[i]])
        with torch.no_grad():
            h = model(input_ids=ids).last_hidden_state[0, -1]
        np.testing.assert_allclose(emb[i], (h / h.norm()).numpy(), atol=1e-5)


def test_pad_falls_back_to_eos_and_left_padding_pools_the_same(encoder):
    _, tok = encoder
    assert tok.pad_token_id is None
    batch = tokenize(tok, ["a b c", "x"], "last", 16)
    assert batch["input_ids"][1].tolist() == [tok.bos_token_id, tok.convert_tokens_to_ids("x"), tok.eos_token_id,
                                             tok.eos_token_id, tok.eos_token_id]
    assert batch["attention_mask"][1].tolist() == [1, 1, 1, 0, 0]
    hidden = torch.randn(2, 5, 3)
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 0, 0]])
    assert torch.equal(pool(hidden, mask, "last"), torch.stack([hidden[0, 4], hidden[1, 2]]))


def test_mean_and_cls_pooling_against_numpy():
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 6, 4, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0]])
    h, m = hidden.numpy(), mask.numpy()
    want = np.stack([h[i, m[i] == 1].mean(axis=0) for i in range(3)])
    np.testing.assert_allclose(pool(hidden, mask, "mean").numpy(), want, rtol=1e-6, atol=1e-6)
    assert torch.equal(pool(hidden, mask, "cls"), hidden[:, 0])
    big = torch.full((1, 2000, 2), 300.0, dtype=torch.float16)  # a float16 sum would overflow to inf
    assert pool(big, torch.ones(1, 2000, dtype=torch.long), "mean").tolist() == [[300.0, 300.0]]
    with pytest.raises(MergeirError, match="pooling"):
        pool(hidden, mask, "max")


def test_length_sorted_batches_restore_the_input_order(encoder):
    model, tok = encoder
    prepared = prepare_texts(tok, TEXTS, "last", 64, batch_size=3)
    widths = [ids.shape[1] for ids, _ in prepared.batches]
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]  # really sorted, so really permuted
    order = np.concatenate(prepared.index)
    assert not np.array_equal(order, np.arange(len(TEXTS)))
    batched = encode_texts(model, tok, TEXTS, "last", 64, batch_size=3)
    one_by_one = np.vstack([encode_texts(model, tok, [t], "last", 64, batch_size=1) for t in TEXTS])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-6)
    assert np.abs(batched[:, None] - batched[None]).sum(-1)[~np.eye(len(TEXTS), dtype=bool)].min() > 1e-3


def test_causal_checkpoint_loads_as_its_base_model(tiny):
    from safetensors.torch import load_file

    model, _ = load_encoder(tiny / "causal")
    assert type(model).__name__ == "MistralModel"
    saved = load_file(str(tiny / "causal" / "model.safetensors"))
    state = model.state_dict()
    assert set(saved) == {"model." + k for k in state} | {"lm_head.weight"}
    for k, v in state.items():
        assert torch.equal(v, saved["model." + k]), k


def test_lora_adapter_is_merged(tiny, tmp_path, encoder):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    base, tok = encoder
    peft_model = get_peft_model(
        AutoModel.from_pretrained(str(tiny / "model")),
        LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "down_proj"]),
    )
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:  # B starts at zero: make the adapter actually do something
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    peft_model.eval()

    merged, _ = load_encoder(tiny / "model", adapter=tmp_path / "adapter")
    assert not any("lora" in n for n, _ in merged.named_parameters())
    with_adapter = encode_texts(merged, tok, TEXTS, "last", 64, batch_size=4)
    with torch.no_grad():  # the un-merged PeftModel, one text at a time, pooled by hand
        want = []
        for ids in token_ids(tok, TEXTS, "last", 64):
            h = peft_model(input_ids=torch.tensor([ids])).last_hidden_state[0, -1]
            want.append((h / h.norm()).numpy())
    np.testing.assert_allclose(with_adapter, np.stack(want), atol=1e-5)
    without = encode_texts(base, tok, TEXTS, "last", 64, batch_size=4)
    assert np.abs(with_adapter - without).max() > 0.05


def test_adapter_must_be_safetensors_and_fit(tiny, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "adapter_config.json").write_text("{}")
    with pytest.raises(MergeirError, match="adapter_model.safetensors"):
        load_encoder(tiny / "model", adapter=tmp_path / "a")
    with pytest.raises(MergeirError, match="folder not found"):
        load_encoder(tmp_path / "nope")


def test_encode_collection_queries_docs_and_meta(encoder, tiny_beir, tmp_path):
    model, tok = encoder
    coll = load_collection(tiny_beir)
    emb = encode_collection(model, tok, coll, "test", pooling="last", max_length=64, batch_size=5,
                            query_instruction="Find it")
    judged = coll.qrels("test")
    assert emb.query_ids and set(emb.query_ids) == set(judged) and len(emb.query_ids) == len(judged)
    assert emb.corpus_ids == list(coll.corpus)
    q0 = encode_texts(model, tok, [f"Instruct: Find it\nQuery: {coll.queries[emb.query_ids[0]]}"], "last", 64, 1)
    np.testing.assert_allclose(emb.queries[0], q0[0], atol=1e-5)
    d = emb.corpus_ids[3]
    doc = coll.corpus[d]
    d3 = encode_texts(model, tok, [doc["title"] + " " + doc["text"]], "last", 64, 1)
    np.testing.assert_allclose(emb.corpus[3], d3[0], atol=1e-5)
    assert emb.meta["query_instruction"] == "Find it" and emb.meta["collection_checksum"] == coll.checksum
    # a plain BEIR folder has no instruction: FROM_COLLECTION gives the bare query
    plain = encode_collection(model, tok, coll, "test", pooling="last", max_length=64, batch_size=5,
                              query_instruction=FROM_COLLECTION)
    bare = encode_texts(model, tok, [coll.queries[plain.query_ids[0]]], "last", 64, 1)
    np.testing.assert_allclose(plain.queries[0], bare[0], atol=1e-5)
    assert plain.meta["query_instruction"] is None

    write_embeddings(tmp_path / "emb", emb)
    back = read_embeddings(tmp_path / "emb")
    assert back.query_ids == emb.query_ids and back.corpus_ids == emb.corpus_ids
    assert np.array_equal(back.queries, emb.queries) and np.array_equal(back.corpus, emb.corpus)
    assert back.meta["n_queries"] == len(emb.query_ids) and back.meta["n_corpus"] == len(emb.corpus_ids)
    (tmp_path / "emb" / "corpus.ids").write_text("\n".join(emb.corpus_ids[:-1]) + "\n")
    with pytest.raises(MergeirError, match="corpus.npy has 48 rows but corpus.ids has 47"):
        read_embeddings(tmp_path / "emb")


def test_cli_encodes_a_causal_checkpoint_with_collection_instruction(tiny, tiny_beir, tmp_path):
    import shutil

    coll_dir = tmp_path / "coll"
    shutil.copytree(tiny_beir, coll_dir)
    (coll_dir / "collection.json").write_text(json.dumps({"name": "tiny", "query_instruction": "Find it"}))
    out = tmp_path / "emb"
    run_bin("encode.py", "--model", tiny / "causal", "--collection", coll_dir, "--out", out,
            "--max-length", 64, "--batch-size", 4, "--no-progress", check=True)
    emb = read_embeddings(out)
    meta = emb.meta
    assert meta["query_instruction"] == "Find it" and meta["pooling"] == "last" and meta["split"] == "test"
    assert meta["collection"] == "tiny" and meta["dtype"] == "float32" and meta["max_length"] == 64
    model, tok = load_encoder(tiny / "causal")
    coll = load_collection(coll_dir)
    want = encode_texts(model, tok, [format_query(coll.queries[q], "Find it") for q in emb.query_ids], "last",
                        64, 2)
    np.testing.assert_allclose(emb.queries, want, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coll", "emb"]


@pytest.mark.parametrize("case", ["missing model", "bad pooling", "unwritable out"])
def test_cli_bad_input_one_error_nothing_left(case, tiny, tiny_beir, tmp_path):
    args = {"--model": tiny / "model", "--collection": tiny_beir, "--out": tmp_path / "emb"}
    extra = []
    if case == "missing model":
        args["--model"] = tmp_path / "no-such-model"
        fragment = "no-such-model: folder not found"
    elif case == "bad pooling":
        extra, fragment = ["--pooling", "max"], "'max' is not one of"
    else:  # a parent that is a file: unwritable even for root, unlike chmod
        (tmp_path / "file").write_text("x")
        args["--out"] = tmp_path / "file" / "emb"
        fragment = "cannot create output folder"
    p = run_bin("encode.py", *[x for kv in args.items() for x in kv], *extra, "--no-progress")
    assert_one_error(p, fragment)
    assert sorted(x.name for x in tmp_path.iterdir()) == ([] if case != "unwritable out" else ["file"])
