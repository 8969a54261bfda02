"""TIES and DARE-TIES honour --density: merged values equal a numpy TIES written here and mergekit run directly on
the same canonical-layout checkpoints at the same density, and another density gives another model."""

import json
import re

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file

from helpers_merging import TINY_BEIR, build_models, state, texts_of
from mergeir.merging import merge

ALPHA_LOWER, ALPHA_UPPER, K = 0.75, 0.25, 2  # 4 layers: [0, 2) and [2, 4)


def _tensors(folder):
    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def ties_reference(s, d, b, alpha: float, density: float) -> np.ndarray:
    """TIES-merging (Yadav et al. 2023) as mergekit's `ties` defines it, in float32 like the merge: each task
    vector (model - base) keeps its `density` largest magnitudes, is weighted (alpha, 1 - alpha), the sign of
    the weighted sum is elected per entry, and the entries agreeing with it are averaged by their weights."""
    base = b.ravel()
    weighted = []
    for m, w in ((s, alpha), (d, 1.0 - alpha)):
        tv = m.ravel() - base
        keep = np.argsort(-np.abs(tv), kind="stable")[: max(1, int(density * tv.size))]
        trimmed = np.zeros_like(tv)
        trimmed[keep] = tv[keep]
        weighted.append((trimmed * np.float32(w), np.float32(w)))
    elected = np.where(sum(t for t, _ in weighted) >= 0, 1.0, -1.0)
    agree = [np.sign(t) == elected for t, _ in weighted]
    num = sum(np.where(a, t, 0.0) for a, (t, _) in zip(agree, weighted))
    den = sum(np.where(a, w, 0.0) for a, (_, w) in zip(agree, weighted))
    den[den == 0] = 1.0
    return (base + num / den).reshape(b.shape)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("models"))  # source: MistralModel layout; domain, base: causal


@pytest.fixture(scope="module")
def ties_merges(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("ties")
    for density in (0.5, 0.9):
        merge(models["source"], models["domain"], root / str(density), alpha_lower=ALPHA_LOWER,
              alpha_upper=ALPHA_UPPER, split_layer=K, method="ties", base=models["base"], density=density,
              dtype="float32")
    return root


@pytest.mark.parametrize("density", [0.5, 0.9])
def test_ties_equals_a_numpy_ties_at_its_density(models, ties_merges, density):
    s, d, b = (_tensors(models[r]) for r in ("source", "domain", "base"))
    got = _tensors(ties_merges / str(density))
    assert sorted(got) == sorted(s)
    layer = re.compile(r"layers\.(\d+)\.")
    for key, t in got.items():
        if key == "embed_tokens.weight":  # the paper restores the source's input embeddings
            assert np.array_equal(t, s[key])
            continue
        m = layer.match(key)
        alpha = ALPHA_UPPER if m is None else (ALPHA_LOWER if int(m.group(1)) < K else ALPHA_UPPER)  # norm: upper
        want = ties_reference(s[key], d["model." + key], b["model." + key], alpha, density)
        np.testing.assert_allclose(t, want, rtol=1e-5, atol=1e-7, err_msg=key)
    prov = json.loads((ties_merges / str(density) / "provenance.json").read_text())
    assert prov["method"] == "ties" and prov["density"] == density


def test_changing_density_changes_the_merge(ties_merges):
    a, b = state(ties_merges / "0.5"), state(ties_merges / "0.9")
    differ = [k for k in a if k != "embed_tokens.weight" and not np.array_equal(a[k].numpy(), b[k].numpy())]
    assert len(differ) == len(a) - 1


@pytest.fixture(scope="module")
def canonical(tmp_path_factory):
    """Source, domain and base all saved as MistralForCausalLM: the layout mergekit reads correctly as it is."""
    from mergeir.models import build_mistral, build_tokenizer

    root = tmp_path_factory.mktemp("canonical")
    tok = build_tokenizer(texts_of(TINY_BEIR))
    for role, seed in (("source", 20), ("domain", 21), ("base", 22)):
        build_mistral(root / role, seed=seed, layout="causal", vocab_size=64, num_hidden_layers=4, tokenizer=tok)
    return root


def _mergekit_directly(root, method: str, density: float, seed: int, out):
    """mergekit on the folders themselves, with a configuration written here (not mergeir's)."""
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    slices = []
    for layers, alpha in (([0, K], ALPHA_LOWER), ([K, 4], ALPHA_UPPER)):
        slices.append({"sources": [
            {"model": str(root / "source"), "layer_range": layers, "parameters": {"weight": alpha, "density": density}},
            {"model": str(root / "domain"), "layer_range": layers,
             "parameters": {"weight": 1 - alpha, "density": density}},
            {"model": str(root / "base"), "layer_range": layers}]})
    cfg = {"merge_method": method, "base_model": str(root / "base"), "dtype": "float32", "slices": slices}
    run_merge(MergeConfiguration.model_validate(cfg), str(out),
              MergeOptions(random_seed=seed, quiet=True, copy_tokenizer=False, write_model_card=False,
                           lazy_unpickle=False))


@pytest.mark.parametrize("method", ["ties", "dare_ties"])
def test_merge_equals_mergekit_run_directly_at_the_same_density(canonical, tmp_path, method):
    ours = tmp_path / "ours"
    merge(canonical / "source", canonical / "domain", ours, alpha_lower=ALPHA_LOWER, alpha_upper=ALPHA_UPPER,
          split_layer=K, method=method, base=canonical / "base", density=0.5, seed=7, dtype="float32",
          restore_source_embeddings=False)
    _mergekit_directly(canonical, method, 0.5, 7, tmp_path / "direct")
    got, want = state(ours), state(tmp_path / "direct")
    assert sorted(got) == sorted(want)
    for k in want:
        assert np.array_equal(got[k].numpy(), want[k].numpy()), k
    cfg = yaml.safe_load((ours / "mergekit_config.yml").read_text())
    densities = {src["parameters"]["density"] for sl in cfg["slices"] for src in sl["sources"] if "parameters" in src}
    assert densities == {0.5}
    # the density really acts: mergekit's own default (1.0, nothing dropped) gives another model
    _mergekit_directly(canonical, method, 1.0, 7, tmp_path / "dense")
    dense = state(tmp_path / "dense")
    assert not any(np.array_equal(got[k].numpy(), dense[k].numpy()) for k in want if k.endswith("proj.weight"))
