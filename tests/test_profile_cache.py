"""α profiles (one α per group of consecutive layers): the slices (K = 2 is the paper's pair), the in-memory merge
of a profile (each tensor the weighted sum of its group's α), and the prefix cache (equal to a plain forward)."""

import numpy as np
import pytest
import torch

from helpers_merging import TINY_BEIR, build_models
from helpers_threads import one_thread  # noqa: F401 - autouse: one torch thread
from mergeir.collections import load_collection
from mergeir.encoding import encode_split, load_encoder, prepare_split
from mergeir.errors import MergeirError
from mergeir.merging.mixing import group_bounds, make_slices, profile_slices
from mergeir.merging.profiles import parse_profile, profile_code
from mergeir.sweep import AlphaSweep
from mergeir.sweep.prefixcache import PrefixEncoder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("models"), layers=8)


@pytest.mark.parametrize("n", [4, 7, 8, 32])
def test_two_groups_are_the_papers_slices(n):
    for al, au in ((0.0, 1.0), (0.25, 0.75)):
        assert profile_slices(group_bounds(n, 2), (al, au)) == make_slices(n, None, al, au)
        for k in range(n + 1):
            assert profile_slices(group_bounds(n, 2, k), (al, au)) == make_slices(n, k, al, au)


def test_group_bounds_split_evenly_and_refuse_bad_counts():
    assert group_bounds(8, 4) == [0, 2, 4, 6, 8]
    assert group_bounds(7, 3) == [0, 2, 4, 7]
    assert group_bounds(4, 1) == [0, 4] and group_bounds(4, 4) == [0, 1, 2, 3, 4]
    for bad in (0, -1, 5, True):
        with pytest.raises(MergeirError, match="--groups"):
            group_bounds(4, bad)
    with pytest.raises(MergeirError, match="one alpha per group"):
        profile_slices([0, 2, 4], (0.5,))
    assert parse_profile("0.25, 0.5,1", groups=3) == (0.25, 0.5, 1.0)
    assert profile_code((0.25, 0.5, 1.0)) == "025_05_10"
    for bad, msg in (("0.5,1.5", "within"), ("0.5,x", "not a number"), ("", "not a number"),
                     ("0.5", "2 layer groups")):
        with pytest.raises(MergeirError, match=msg):
            parse_profile(bad, groups=2)


def test_profile_merge_is_each_groups_weighted_sum(models):
    """Four groups of two layers with four alphas: every layer tensor is α_g·source + (1-α_g)·domain of its group;
    the source's embeddings are restored, the final norm takes the last group's α."""
    model, _ = load_encoder(models["source"], device="cpu")
    sweep = AlphaSweep(model, models["source"], models["domain"])
    profile = (0.25, 1.0, 0.0, 0.6)
    bounds = group_bounds(8, 4)
    sweep.set(0.5, 0.5)  # some other state first: only what changes is rewritten, and nothing stale remains
    sweep.set_profile(bounds, profile)
    assert sweep.point == profile
    checked = 0
    for key, (kind, layer) in sweep.mergeable.items():
        value = sweep.params[key].detach()
        src, dom = (sweep.host[r].get(key) for r in ("source", "domain"))
        if kind == "embed":
            assert torch.equal(value, src), key  # the source's own embeddings
            continue
        a = profile[layer // 2] if kind == "layer" else profile[-1]  # "post": the final norm
        assert kind in ("layer", "post"), (key, kind)
        torch.testing.assert_close(value, a * src + (1 - a) * dom, rtol=0, atol=1e-6)
        checked += 1
    assert checked == len(sweep.mergeable) - 1
    # two groups at K: the same tensors as set(alpha_lower, alpha_upper)
    sweep.set_profile(group_bounds(8, 2, 3), (0.25, 0.75))
    pair = {k: v.clone() for k, v in sweep.state_dict().items()}
    fresh = AlphaSweep(model, models["source"], models["domain"], split_layer=3)
    fresh.set(0.25, 0.75)
    assert all(torch.equal(pair[k], v) for k, v in fresh.state_dict().items())


@pytest.mark.parametrize("budget_groups", [0, 1, 3])
def test_prefix_cache_equals_the_plain_forward(models, budget_groups):
    """Profiles visited so that prefixes of 0-3 groups repeat; the embeddings equal a plain forward's, and the cache
    runs only the groups after the deepest cached unchanged prefix."""
    model, tok = load_encoder(models["source"], device="cpu")
    prepared = prepare_split(tok, load_collection(TINY_BEIR), "train", pooling="last", max_length=48, batch_size=5)
    bounds = group_bounds(8, 4)
    plain_sweep = AlphaSweep(model, models["source"], models["domain"])
    per_boundary = sum(ids.shape[0] * ids.shape[1] for p in (prepared.queries, prepared.corpus)
                       for ids, _ in p.batches) * model.config.hidden_size * 4
    profiles = [(0.0, 0.5, 1.0, 0.25), (0.0, 0.5, 1.0, 0.75), (0.0, 0.5, 0.0, 0.75), (0.0, 1.0, 0.0, 0.75),
                (1.0, 1.0, 0.0, 0.75), (1.0, 1.0, 0.0, 0.75), (0.0, 0.5, 1.0, 0.25)]
    want = []
    for p in profiles:
        plain_sweep.set_profile(bounds, p)
        emb = encode_split(model, prepared)
        want.append((emb.queries, emb.corpus))
    enc = PrefixEncoder(model, AlphaSweep(model, models["source"], models["domain"]), prepared, bounds,
                        budget_bytes=per_boundary * budget_groups + per_boundary // 2)
    assert enc.keep == budget_groups
    runs = []
    for p, (q, d) in zip(profiles, want):
        before = enc.groups_run
        gq, gd = enc.encode(p)
        runs.append(enc.groups_run - before)
        np.testing.assert_allclose(gq, q, rtol=0, atol=1e-6)
        np.testing.assert_allclose(gd, d, rtol=0, atol=1e-6)
    reuse = [0, 3, 2, 1, 0, 3, 0]  # unchanged leading groups of each profile against the one before
    assert runs == [4 - min(r, budget_groups) for r in reuse]


def test_merge_py_writes_a_profile_as_each_groups_weighted_sum(models, tmp_path):
    """bin/merge.py --profile (mergekit, one slice per group): every layer tensor is its group's weighted sum, the
    final norm the last group's, the embeddings the source's; two groups equal --alpha-lower/--alpha-upper."""
    from helpers_cli import run_bin
    from helpers_merging import bits_equal, state

    profile = (0.25, 1.0, 0.0, 0.6)
    run_bin("merge.py", "--source", models["source"], "--domain", models["domain"], "--profile",
            ",".join(map(str, profile)), "--dtype", "float32", "--out", tmp_path / "m", check=True)
    got = state(tmp_path / "m")
    model, _ = load_encoder(models["source"], device="cpu")
    sweep = AlphaSweep(model, models["source"], models["domain"])
    for key, (kind, layer) in sweep.mergeable.items():
        value = got[sweep.names[key]]
        src, dom = (sweep.host[r].get(key) for r in ("source", "domain"))
        if kind == "embed":
            assert torch.equal(value, src)
            continue
        a = profile[layer // 2] if kind == "layer" else profile[-1]
        torch.testing.assert_close(value, a * src + (1 - a) * dom, rtol=0, atol=1e-6)
    # the sweep's in-memory profile is this merge, bit for bit
    sweep.set_profile(group_bounds(8, 4), profile)
    assert all(bits_equal(v, got[k]) for k, v in sweep.state_dict().items())
    run_bin("merge.py", "--source", models["source"], "--domain", models["domain"], "--profile", "0.25,0.75",
            "--dtype", "float32", "--out", tmp_path / "p2", check=True)
    run_bin("merge.py", "--source", models["source"], "--domain", models["domain"], "--alpha-lower", "0.25",
            "--alpha-upper", "0.75", "--dtype", "float32", "--out", tmp_path / "a2", check=True)
    two, pair = state(tmp_path / "p2"), state(tmp_path / "a2")
    assert sorted(two) == sorted(pair) and all(bits_equal(two[k], pair[k]) for k in two)


@pytest.mark.parametrize("args,fragment", [
    (["--profile", "0.5,1.5"], "within [0, 1]"),
    (["--profile", "0.5,x"], "not a number"),
    (["--profile", ",".join(["0.5"] * 9)], "--profile: alphas (layer groups) 9"),
    (["--profile", "0.5,1", "--alpha-lower", "0.5"], "--profile replaces"),
    (["--profile", "0.5,1", "--split-layer", "3"], "--profile replaces"),
    (["--alpha-lower", "0.5"], "or --profile"),
])
def test_bad_profile_is_one_error_line(models, tmp_path, args, fragment):
    from helpers_cli import assert_one_error, run_bin
    from helpers_merging import leftovers

    p = run_bin("merge.py", "--source", models["source"], "--domain", models["domain"], "--out", tmp_path / "m",
                *args)
    assert_one_error(p, fragment)
    assert not (tmp_path / "m").exists() and leftovers(tmp_path) == []
