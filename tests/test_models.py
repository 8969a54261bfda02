"""Model folders: key layouts, canonical keys, compatibility checks, safetensors-only reading, pinned download."""

import hashlib
import json
import shutil

import pytest

from helpers_cli import assert_one_error, run_bin
from helpers_merging import LAYERS, build_bert_pair, build_models, leftovers
from mergeir.errors import MergeirError
from mergeir.models import (
    LAYOUTS,
    check_compatible,
    detect_layout,
    download_model,
    from_canonical,
    key_role,
    open_checkpoint,
    to_canonical,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("models"))


def test_layouts_are_told_apart_by_their_keys(models):
    src, dom = open_checkpoint(models["source"]), open_checkpoint(models["domain"])
    assert src.layout.name == "mistral-model" and dom.layout.name == "mistral-causal"
    assert "layers.0.self_attn.q_proj.weight" in src.key_file and "lm_head.weight" in dom.key_file
    # both map onto one canonical layout (mergekit's MistralForCausalLM names); only lm_head is the domain's alone
    assert set(dom.canonical) - set(src.canonical) == {"lm_head.weight"}
    assert set(src.canonical) <= set(dom.canonical)
    assert detect_layout(["bert.encoder.layer.0.output.dense.weight", "cls.predictions.bias"]).name == "bert-prefixed"
    assert detect_layout(["encoder.layer.0.output.dense.weight"]).name == "bert-model"
    with pytest.raises(MergeirError, match="unknown key layout"):
        detect_layout(["transformer.h.0.attn.c_attn.weight"], "x")


@pytest.mark.parametrize("layout,native,canonical", [
    ("mistral-model", "layers.3.mlp.up_proj.weight", "model.layers.3.mlp.up_proj.weight"),
    ("mistral-model", "norm.weight", "model.norm.weight"),
    ("mistral-causal", "model.embed_tokens.weight", "model.embed_tokens.weight"),
    ("bert-prefixed", "bert.encoder.layer.1.output.dense.bias", "encoder.layer.1.output.dense.bias"),
    ("bert-prefixed", "cls.predictions.bias", "cls.predictions.bias"),
    ("bert-model", "pooler.dense.weight", "pooler.dense.weight"),
])
def test_canonical_keys_round_trip(layout, native, canonical):
    assert to_canonical(native, LAYOUTS[layout]) == canonical
    assert from_canonical(canonical, LAYOUTS[layout]) == native


def test_lm_head_has_no_place_in_a_bare_model():
    assert from_canonical("lm_head.weight", LAYOUTS["mistral-model"]) is None


@pytest.mark.parametrize("family,key,role", [
    ("mistral", "model.embed_tokens.weight", ("embed", None)),
    ("mistral", "model.layers.12.input_layernorm.weight", ("layer", 12)),
    ("mistral", "model.norm.weight", ("post", None)),
    ("mistral", "lm_head.weight", ("post", None)),
    ("bert", "embeddings.word_embeddings.weight", ("embed", None)),
    ("bert", "embeddings.LayerNorm.weight", ("pre", None)),
    ("bert", "embeddings.position_ids", ("extra", None)),
    ("bert", "encoder.layer.5.attention.self.key.bias", ("layer", 5)),
    ("bert", "pooler.dense.bias", ("post", None)),
])
def test_key_roles_decide_which_slice_weights_a_tensor(family, key, role):
    assert key_role(family, key) == role


def test_compatible_pair_passes_and_mismatches_name_the_difference(models, tmp_path):
    from mergeir.models import build_mistral

    src = open_checkpoint(models["source"], "--source")
    check_compatible(src, open_checkpoint(models["domain"], "--domain"))
    vocab = src.config["vocab_size"]
    build_mistral(tmp_path / "wide", seed=3, layout="causal", hidden_size=48, num_hidden_layers=LAYERS,
                  vocab_size=vocab)
    build_mistral(tmp_path / "vocab", seed=3, layout="causal", num_hidden_layers=LAYERS, vocab_size=vocab * 2)
    build_mistral(tmp_path / "kv", seed=3, layout="causal", num_hidden_layers=LAYERS, vocab_size=vocab,
                  num_key_value_heads=4)
    with pytest.raises(MergeirError, match="hidden_size is 48"):
        check_compatible(src, open_checkpoint(tmp_path / "wide", "--domain"))
    with pytest.raises(MergeirError, match=f"vocab_size is {vocab * 2}"):
        check_compatible(src, open_checkpoint(tmp_path / "vocab", "--domain"))
    with pytest.raises(MergeirError, match="num_key_value_heads is 4"):
        check_compatible(src, open_checkpoint(tmp_path / "kv", "--domain"))
    bert = build_bert_pair(tmp_path / "bert", with_position_ids=False)
    with pytest.raises(MergeirError, match="is a bert model but --source .* is mistral"):
        check_compatible(src, open_checkpoint(bert["domain"], "--domain"))


def test_a_different_tokenizer_vocabulary_is_refused(models, tmp_path):
    other = tmp_path / "domain"
    shutil.copytree(models["domain"], other)
    tj = json.loads((other / "tokenizer.json").read_text())
    vocab = tj["model"]["vocab"]
    a, b = sorted(vocab)[5], sorted(vocab)[6]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    (other / "tokenizer.json").write_text(json.dumps(tj))
    with pytest.raises(MergeirError, match="tokenizer vocabulary differs"):
        check_compatible(open_checkpoint(models["source"], "--source"), open_checkpoint(other, "--domain"))


def test_pickle_only_and_weightless_folders_are_refused(models, tmp_path):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(models["domain"] / "config.json", pickled)
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04never unpickled")
    with pytest.raises(MergeirError, match="only pickle weights .*pytorch_model.bin"):
        open_checkpoint(pickled, "--domain")
    (pickled / "pytorch_model.bin").unlink()
    with pytest.raises(MergeirError, match="no model weights"):
        open_checkpoint(pickled, "--domain")
    (pickled / "model.safetensors").write_bytes(b"\x05\x00")
    with pytest.raises(MergeirError, match="not a readable safetensors file"):
        open_checkpoint(pickled, "--domain")
    with pytest.raises(MergeirError, match="no config.json"):
        open_checkpoint(tmp_path, "--domain")


def test_sharded_checkpoint_is_read_through_its_index(models, tmp_path):
    from safetensors.torch import load_file, save_file

    sharded = tmp_path / "sharded"
    shutil.copytree(models["domain"], sharded)
    st = load_file(str(sharded / "model.safetensors"))
    (sharded / "model.safetensors").unlink()
    keys = sorted(st)
    halves = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    for name, ks in halves.items():
        save_file({k: st[k] for k in ks}, str(sharded / name), metadata={"format": "pt"})
    (sharded / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: n for n, ks in halves.items() for k in ks}}))
    ck = open_checkpoint(sharded)
    assert ck.layout.name == "mistral-causal" and len(ck.key_file) == len(st)
    k = "model.layers.3.mlp.gate_proj.weight"
    assert ck.tensor(k).equal(st[k])


# ---------------------------------------------------------------------------------------------------------------
# download_model (local copies in the upstream format; the hub is unreachable here)


def _hub_like(models, tmp_path, sha="0123456789abcdef0123456789abcdef01234567"):
    """A Hugging Face cache snapshot: files are symlinks into blobs/, the folder is named by the commit."""
    snap = tmp_path / "hub" / "models--org--tiny" / "snapshots" / sha
    blobs = tmp_path / "hub" / "models--org--tiny" / "blobs"
    snap.mkdir(parents=True)
    blobs.mkdir(parents=True)
    for p in models["domain"].iterdir():
        blob = blobs / hashlib.sha256(p.read_bytes()).hexdigest()
        shutil.copy(p, blob)
        (snap / p.name).symlink_to(blob)
    (snap / "pytorch_model.bin").write_bytes(b"pickle: must not be copied")
    (snap / "README.md").write_text("card")
    (snap / "1_Pooling").mkdir()
    (snap / "1_Pooling" / "config.json").write_text("{}")
    return snap, sha


def test_download_from_a_local_snapshot_copies_safetensors_and_records_hashes(models, tmp_path):
    snap, sha = _hub_like(models, tmp_path)
    out = tmp_path / "out"
    rec = download_model("org/tiny", sha, out, source=snap)
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert "pytorch_model.bin" not in names and "README.md" not in names
    assert {"model.safetensors", "config.json", "tokenizer.json", "1_Pooling/config.json",
            "provenance.json"} <= set(names)
    assert not (out / "model.safetensors").is_symlink()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov == json.loads(json.dumps(rec))
    assert prov["repo_id"] == "org/tiny" and prov["resolved_revision"] == sha and prov["revision_verified"]
    assert prov["layout"] == "mistral-causal" and prov["num_hidden_layers"] == LAYERS
    for rel, info in prov["files"].items():
        assert info["sha256"] == hashlib.sha256((out / rel).read_bytes()).hexdigest()
        assert info["bytes"] == (out / rel).stat().st_size
    assert prov["tools"]["safetensors"] and prov["tools"]["huggingface_hub"]
    # a merge reads these recorded hashes instead of re-hashing
    ck = open_checkpoint(out)
    assert ck.input_record()["weights_sha256"]["model.safetensors"] == prov["files"]["model.safetensors"]["sha256"]


def test_download_refuses_a_snapshot_of_another_revision(models, tmp_path):
    snap, sha = _hub_like(models, tmp_path)
    out = tmp_path / "out"
    with pytest.raises(MergeirError, match="is revision 0123"):
        download_model("org/tiny", "f" * 40, out, source=snap)
    assert not out.exists() and leftovers(tmp_path) == []


def test_download_cli_refuses_pickle_only_and_unreachable_hub(models, tmp_path):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(models["domain"] / "config.json", pickled)
    (pickled / "pytorch_model.bin").write_bytes(b"x")
    out = tmp_path / "out"
    p = run_bin("download.py", "model", "org/tiny", "--revision", "main", "--out", out, "--source", pickled)
    assert_one_error(p, "only pickle weights")
    p = run_bin("download.py", "model", "org/not-here", "--revision", "main", "--out", out,
                env={"HF_HUB_OFFLINE": "1"})
    assert_one_error(p, "org/not-here@main", "--source")
    assert not out.exists() and leftovers(tmp_path) == []
