"""The in-memory α sweep: grid artifact, per-point metrics equal to an independent encode+evaluate of the same
merge, the authors' folder codes, the recorded split, and bad input.

The grid is asymmetric (0.25 is not 1 - 1.0, nor 1 - 0.25) and the split layer is not the default half, so an α
swapped for 1 - α, or a split ignored or moved by one layer, changes every compared point."""

import json
import re
import shutil

import numpy as np
import pytest

from helpers_cli import assert_one_error, run_bin
from helpers_merging import LAYERS, TINY_BEIR, build_models, leftovers
from mergeir.errors import MergeirError
from mergeir.merging import alpha_code, parse_grid
from mergeir.sweep import run_sweep

GRID = [0.25, 1.0]
SPLIT_LAYER = 1  # the default would be LAYERS // 2 = 2


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def grid_dir(models, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "grid"
    run_bin("sweep.py", "--source", models["source"], "--domain", models["domain"], "--collection", TINY_BEIR,
            "--out", out, "--grid", ",".join(map(str, GRID)), "--split-layer", SPLIT_LAYER, "--device", "cpu",
            check=True)
    return out


@pytest.mark.parametrize("alpha,code", [(0, "00"), (0.25, "025"), (0.5, "05"), (0.75, "075"), (1, "10")])
def test_alpha_codes_are_the_authors(alpha, code):
    assert alpha_code(alpha) == code


def test_parse_grid_checks_values():
    assert parse_grid("0,0.25,1") == [0.0, 0.25, 1.0]
    for bad, msg in (("0,1.5", "within"), ("0,x", "not a number"), ("0.5,0.5", "twice"), ("", "not a number")):
        with pytest.raises(MergeirError, match=msg):
            parse_grid(bad)


def test_grid_artifact_records_every_point_and_its_split(grid_dir):
    doc = json.loads((grid_dir / "grid.json").read_text())
    assert doc["collection"] == "tiny-beir" and doc["split"] == "train" and doc["eval_split"] == "test"
    assert doc["grid"] == GRID and (doc["split_layer"], doc["num_layers"]) == (SPLIT_LAYER, LAYERS)
    assert [(p["alpha_lower"], p["alpha_upper"], p["dir"]) for p in doc["points"]] == [
        (0.25, 0.25, "points/025_025"), (0.25, 1.0, "points/025_10"), (1.0, 0.25, "points/10_025"),
        (1.0, 1.0, "points/10_10")]
    train_qids = {ln.split("\t")[0] for ln in (TINY_BEIR / "qrels" / "train.tsv").read_text().splitlines()[1:]}
    for p in doc["points"]:
        m = json.loads((grid_dir / p["dir"] / "metrics.json").read_text())
        assert m["split"] == "train" and m["embeddings_meta"]["split"] == "train"
        assert m["tags"]["alpha_lower"] == p["alpha_lower"] and m["tags"]["alpha_upper"] == p["alpha_upper"]
        assert m["provenance"]["merge"]["split_layer"] == SPLIT_LAYER
        assert set(m["per_query"]) == train_qids
        assert p["ndcg_cut_10"] == m["mean"]["ndcg_cut_10"]
        assert np.isclose(m["mean"]["ndcg_cut_10"], np.mean([v["ndcg_cut_10"] for v in m["per_query"].values()]))
        assert (grid_dir / p["dir"] / "run.trec").is_file()
    # the selection stage reads it (and would refuse it were it the test split)
    from mergeir.sweep import load_grid

    assert len(load_grid(grid_dir).points) == 4


def write_paper_merge(source, domain, out, alpha_lower: float, alpha_upper: float, split_layer: int):
    """The paper's evaluated model written straight from its definition, with numpy and no mergeir or mergekit
    code: the source's input embeddings; layer i mixes alpha_lower * source + (1 - alpha_lower) * domain if
    i < split_layer, else alpha_upper; the final norm alpha_upper. Source: MistralModel keys; domain: `model.*`."""
    from safetensors.numpy import load_file, save_file

    shutil.copytree(source, out)  # the source's config and tokenizer
    s, d = load_file(str(source / "model.safetensors")), load_file(str(domain / "model.safetensors"))
    merged = {}
    for key, t in s.items():
        layer = re.match(r"layers\.(\d+)\.", key)
        if key == "embed_tokens.weight":
            merged[key] = t
            continue
        a = alpha_upper if layer is None else alpha_lower if int(layer.group(1)) < split_layer else alpha_upper
        merged[key] = (a * t.astype(np.float64) + (1 - a) * d["model." + key].astype(np.float64)).astype(t.dtype)
    save_file(merged, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def _encode_and_score(folder):
    """Per-query metrics and the run of one model folder on tiny-beir's train queries, outside the sweep."""
    from mergeir.collections import load_collection
    from mergeir.encoding import encode_collection, load_encoder
    from mergeir.evaluation import evaluate, search

    coll = load_collection(TINY_BEIR)
    model, tok = load_encoder(folder, dtype="float32", device="cpu")
    emb = encode_collection(model, tok, coll, "train", pooling="last", max_length=1024, batch_size=16)
    run = search(emb.queries, emb.query_ids, emb.corpus, emb.corpus_ids, depth=100)
    return evaluate(run, coll.qrels("train"))["per_query"], run


def _assert_point_equals(grid_dir, code, expect, run):
    from mergeir.evaluation import read_trec

    got = json.loads((grid_dir / "points" / code / "metrics.json").read_text())["per_query"]
    assert got.keys() == expect.keys()
    for q in expect:
        assert got[q]["ndcg_cut_10"] == pytest.approx(expect[q]["ndcg_cut_10"], abs=1e-9), (code, q)
    got_run = read_trec(grid_dir / "points" / code / "run.trec")
    assert {q: list(r) for q, r in got_run.items()} == {q: list(r) for q, r in run.items()}, code
    for q in run:
        assert list(got_run[q].values()) == pytest.approx(list(run[q].values()), abs=1e-5), (code, q)


@pytest.mark.parametrize("alpha_lower,alpha_upper", [(0.25, 1.0), (1.0, 0.25), (0.25, 0.25)])
def test_grid_points_equal_an_independently_written_merge(grid_dir, models, tmp_path, alpha_lower, alpha_upper):
    merged = write_paper_merge(models["source"], models["domain"], tmp_path / "merged", alpha_lower, alpha_upper,
                               SPLIT_LAYER)
    expect, run = _encode_and_score(merged)
    _assert_point_equals(grid_dir, f"{alpha_code(alpha_lower)}_{alpha_code(alpha_upper)}", expect, run)


def test_grid_points_equal_the_written_mergekit_merge(grid_dir, models, tmp_path):
    """Point (0.25, 1.0) == bin/merge.py's model at the same split layer, encoded and evaluated independently; point
    (1, 1) == the source itself."""
    from mergeir.merging import merge

    merged = tmp_path / "merged"
    merge(models["source"], models["domain"], merged, alpha_lower=0.25, alpha_upper=1.0, split_layer=SPLIT_LAYER,
          dtype="float32")
    for folder, code in ((merged, "025_10"), (models["source"], "10_10")):
        _assert_point_equals(grid_dir, code, *_encode_and_score(folder))


def test_plain_sweep_path_merges_each_half_with_its_own_alpha(models, tmp_path):
    """Without the layer-split cache every point is set and encoded whole: point (0.25, 1.0) is the paper's merge
    with 0.25 below the split, not (1.0, 0.25)."""
    out = tmp_path / "plain"
    doc = run_sweep(models["source"], models["domain"], TINY_BEIR, out, grid=GRID, split_layer=SPLIT_LAYER,
                    alpha_lowers=[0.25], layer_cache=False, device="cpu", log=lambda line: None)
    assert doc["layer_cache"] is False
    assert [(p["alpha_lower"], p["alpha_upper"]) for p in doc["points"]] == [(0.25, 0.25), (0.25, 1.0)]
    merged = write_paper_merge(models["source"], models["domain"], tmp_path / "merged", 0.25, 1.0, SPLIT_LAYER)
    _assert_point_equals(out, "025_10", *_encode_and_score(merged))


def test_sweep_rewrites_only_what_changed(models):
    from mergeir.encoding import load_encoder
    from mergeir.sweep import AlphaSweep

    model, _ = load_encoder(models["source"], dtype="float32", device="cpu")
    sweep = AlphaSweep(model, models["source"], models["domain"], split_layer=1)
    n = len(sweep.mergeable)
    assert sweep.set(0.5, 0.5) == n
    assert sweep.set(0.5, 0.75) == 3 * 9 + 1  # layers [1, 4) and the final norm
    assert sweep.set(0.25, 0.75) == 9  # layer 0 only: input embeddings stay the source's
    assert sweep.set(0.25, 0.75) == 0


def test_bad_sweep_input_leaves_nothing(models, tmp_path):
    out = tmp_path / "grid"
    base = ["--source", models["source"], "--domain", models["domain"], "--collection", TINY_BEIR, "--out", out,
            "--device", "cpu"]
    assert_one_error(run_bin("sweep.py", *base, "--grid", "0,1.5"), "within [0, 1]")
    assert_one_error(run_bin("sweep.py", *base, "--split", "dev"), "no qrels for split 'dev'")
    assert not out.exists() and leftovers(tmp_path) == []


def test_collection_without_train_split_needs_split(models, tmp_path):
    coll = tmp_path / "coll"
    shutil.copytree(TINY_BEIR, coll)
    (coll / "qrels" / "train.tsv").unlink()
    with pytest.raises(MergeirError, match="no train_split"):
        run_sweep(models["source"], models["domain"], coll, tmp_path / "grid", device="cpu")
    assert not (tmp_path / "grid").exists()
