"""Scatter/gather through the bin commands: an encode run as shards and a sweep run per alpha_lower, each gathered
into the artifact the single run writes (embeddings byte for byte; the grid in content and every point file)."""

import json
import re
import shutil

import numpy as np
import pytest

from helpers_cli import assert_one_error, run_bin
from helpers_merging import TINY_BEIR, build_models, leftovers
from helpers_threads import one_thread  # noqa: F401 - autouse: one torch thread
from mergeir.encoding import read_embeddings
from mergeir.errors import MergeirError

GRID = "0.5,1"
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # the bin commands too (helpers_threads)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("models"))


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _write_shards(root, models, batch_size, shards, which=None):
    """Shards written in-process exactly as bin/encode.py --shard writes them (the bin path: the slow test)."""
    from mergeir.collections import load_collection
    from mergeir.encoding import encode_shard, load_encoder, prepare_split, write_shard

    model, tok = load_encoder(models["source"], dtype="float32", device="cpu")
    prepared = prepare_split(tok, load_collection(TINY_BEIR), "train", pooling="last", max_length=1024,
                             batch_size=batch_size)
    for i in (range(shards) if which is None else which):
        (root / f"s{i}").mkdir(parents=True)
        parts, meta = encode_shard(model, prepared, i, shards, extra_meta={"stage": "encode"})
        write_shard(root / f"s{i}", prepared, parts, meta)
    return model, prepared


@pytest.fixture(scope="module")
def shards(models, tmp_path_factory):
    """Three shards and the unsharded artifact of the same prepared split (more shards than query batches)."""
    from mergeir.encoding import encode_split, write_embeddings

    root = tmp_path_factory.mktemp("lib")
    model, prepared = _write_shards(root, models, 4, 3)
    write_embeddings(root / "whole", encode_split(model, prepared, extra_meta={"stage": "encode"}))
    return root


def test_shards_partition_the_run_and_gather_byte_identical(shards, tmp_path):
    from mergeir.encoding import gather_embeddings

    rows = [np.load(shards / f"s{i}" / "corpus.rows.npy") for i in range(3)]
    n = len((shards / "whole" / "corpus.ids").read_text().split())
    assert all(len(r) for r in rows) and sorted(np.concatenate(rows).tolist()) == list(range(n))
    gather_embeddings([shards / "s2", shards / "s0", shards / "s1"], tmp_path / "gathered")
    whole = _files(shards / "whole")
    assert _files(tmp_path / "gathered") == whole
    assert sorted(whole) == ["corpus.ids", "corpus.npy", "meta.json", "queries.ids", "queries.npy"]
    with pytest.raises(MergeirError, match="rows but"):  # a shard folder is not an embeddings artifact
        read_embeddings(shards / "s0")


def test_gather_refuses_incomplete_or_foreign_shards(shards, models, tmp_path):
    out = tmp_path / "g"
    s = [shards / f"s{i}" for i in range(3)]
    assert_one_error(run_bin("gather.py", "embeddings", "--shard", s[0], "--shard", s[1], "--out", out),
                     "shards [0, 1] given, the run has 3")
    assert_one_error(run_bin("gather.py", "embeddings", "--shard", s[0], "--shard", s[0], "--shard", s[1],
                             "--out", out), "each once")
    assert_one_error(run_bin("gather.py", "embeddings", "--shard", shards / "whole", "--out", out),
                     "not an encoding shard")
    # a shard of another run (other batch size: other batches) is refused by its batch plan
    _write_shards(tmp_path / "other", models, 3, 3, which=[2])
    assert_one_error(run_bin("gather.py", "embeddings", "--shard", s[0], "--shard", s[1], "--shard",
                             tmp_path / "other" / "s2", "--out", out), "another run")
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("vectors", ["one too many", "only one"])
def test_gather_refuses_a_shard_whose_vectors_do_not_match_its_rows(shards, tmp_path, vectors):
    """A shard whose corpus.npy holds another count of vectors than corpus.rows.npy names rows (a broken or
    mixed-up file): with a single vector numpy would broadcast it into every row of the shard."""
    from mergeir.encoding import gather_embeddings

    s = [tmp_path / f"s{i}" for i in range(3)]
    for i, d in enumerate(s):
        shutil.copytree(shards / f"s{i}", d)
    vec = np.load(s[1] / "corpus.npy")
    assert len(vec) > 1
    np.save(s[1] / "corpus.npy", np.concatenate([vec, vec[:1]]) if vectors == "one too many" else vec[:1])
    with pytest.raises(MergeirError, match=re.escape(str(s[1])) + r"\W+corpus\.npy"):  # names the shard's file
        gather_embeddings(s, tmp_path / "g")
    assert not (tmp_path / "g").exists() and leftovers(tmp_path) == []


@pytest.fixture(scope="module")
def parts(models, tmp_path_factory):
    """The sweep over GRID as two partial grids, one per alpha_lower (in-process: bin/sweep.py's library call)."""
    from mergeir.sweep import run_sweep

    root = tmp_path_factory.mktemp("parts")
    for a in (0.5, 1.0):
        run_sweep(models["source"], models["domain"], TINY_BEIR, root / f"part{a}", grid=GRID, alpha_lowers=[a],
                  max_length=64, batch_size=8, device="cpu", log=lambda line: None)
    return root


def test_gather_grid_refuses_an_alpha_lower_swept_by_two_parts(parts, tmp_path):
    from mergeir.sweep import gather_grid

    again = tmp_path / "again"  # the alpha_lower 1 row swept a second time
    shutil.copytree(parts / "part1.0", again)
    with pytest.raises(MergeirError, match="alpha_lower 1.0 is in more than one --part"):
        gather_grid([parts / "part0.5", parts / "part1.0", again], tmp_path / "g")
    assert not (tmp_path / "g").exists() and leftovers(tmp_path) == []
    doc = gather_grid([parts / "part1.0", parts / "part0.5"], tmp_path / "g")  # each row once: the whole grid
    assert [(p["alpha_lower"], p["alpha_upper"]) for p in doc["points"]] == [(0.5, 0.5), (0.5, 1.0), (1.0, 0.5),
                                                                            (1.0, 1.0)]


@pytest.mark.slow
def test_bin_encode_shards_gather_byte_identical(models, tmp_path):
    base = ["--model", models["source"], "--collection", TINY_BEIR, "--split", "train", "--device", "cpu",
            "--batch-size", "4", "--no-progress"]
    run_bin("encode.py", *base, "--out", tmp_path / "whole", check=True, env=ONE_THREAD)
    for i in range(3):
        run_bin("encode.py", *base, "--out", tmp_path / f"s{i}", "--shard", i, "--shards", 3, check=True,
                env=ONE_THREAD)
    p = run_bin("gather.py", "embeddings", *[a for i in (2, 0, 1) for a in ("--shard", tmp_path / f"s{i}")],
                "--out", tmp_path / "gathered", check=True)
    assert "from 3 shards" in p.stdout
    assert _files(tmp_path / "gathered") == _files(tmp_path / "whole")


def test_bad_shard_options(models, tmp_path):
    base = ["--model", models["source"], "--collection", TINY_BEIR, "--device", "cpu", "--out", tmp_path / "e"]
    assert_one_error(run_bin("encode.py", *base, "--shard", 3, "--shards", 3), "--shard must be within [0, --shards)")
    assert_one_error(run_bin("encode.py", *base, "--shard", 0), "--shard and --shards go together")
    assert not (tmp_path / "e").exists()


@pytest.mark.slow
def test_sweep_split_by_alpha_lower_gathers_into_the_whole_grid(models, tmp_path):
    base = ["--source", models["source"], "--domain", models["domain"], "--collection", TINY_BEIR, "--grid", GRID,
            "--device", "cpu"]
    run_bin("sweep.py", *base, "--out", tmp_path / "whole", check=True, env=ONE_THREAD)
    for a in ("0.5", "1"):
        run_bin("sweep.py", *base, "--out", tmp_path / f"part{a}", "--alpha-lower", a, check=True,
                env=ONE_THREAD)
        part = json.loads((tmp_path / f"part{a}" / "grid.json").read_text())
        assert part["partial"] == {"alpha_lower": [float(a)]} and {p["alpha_lower"] for p in part["points"]} == {
            float(a)}
    assert_one_error(run_bin("gather.py", "grid", "--part", tmp_path / "part1", "--out", tmp_path / "g"),
                     "no --part holds alpha_lower 0.5")
    run_bin("gather.py", "grid", "--part", tmp_path / "part1", "--part", tmp_path / "part0.5", "--out",
            tmp_path / "gathered", check=True)
    whole, gathered = _files(tmp_path / "whole"), _files(tmp_path / "gathered")
    assert json.loads(gathered.pop("grid.json")) == json.loads(whole.pop("grid.json"))
    assert gathered == whole  # every point's metrics.json and run.trec, byte for byte
    assert_one_error(run_bin("sweep.py", *base, "--out", tmp_path / "x", "--alpha-lower", "0.25"),
                     "--alpha-lower 0.25 is not a value of --grid")
