"""The α-profile search (bin/sweep.py --search): with two groups and optuna's grid sampler over the grid's values it is
the grid sweep (same points, bit-identical runs and metrics, same chosen α); a seeded search repeats itself; the
objective is selection's (mean per-query nDCG@10 over the chosen queries); bad input is one error line."""

import hashlib
import json

import pytest

from helpers_cli import assert_one_error, run_bin
from helpers_merging import TINY_BEIR, build_models, leftovers
from helpers_threads import one_thread  # noqa: F401 - autouse: one torch thread
from mergeir.sweep import run_sweep, select_from_grid
from mergeir.sweep.search import run_search

GRID = [0.25, 1.0]  # asymmetric, and the split is not the default half: a swapped α or a moved split shows
SPLIT_LAYER = 1
COMMON = dict(device="cpu", batch_size=5, max_length=48, depth=48)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def grid_dir(models, tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "grid"
    run_sweep(models["source"], models["domain"], TINY_BEIR, out, grid=GRID, split_layer=SPLIT_LAYER, **COMMON)
    return out


def _points(root):
    doc = json.loads((root / "grid.json").read_text())
    return doc, {p["dir"]: p for p in doc["points"]}


def test_two_group_grid_search_is_the_grid_sweep(models, grid_dir, tmp_path):
    out = tmp_path / "search"
    doc = run_search(models["source"], models["domain"], TINY_BEIR, out, groups=2, sampler="grid", grid=GRID,
                     budget=25, split_layer=SPLIT_LAYER, **COMMON)
    assert doc["search"]["budget"] == 25 and doc["search"]["n_trials"] == 4  # the grid has 4 points: all of them
    assert doc["bounds"] == [0, SPLIT_LAYER, 4] and doc["groups"] == 2
    gdoc, grid_points = _points(grid_dir)
    sdoc, search_points = _points(out)
    assert sorted(grid_points) == sorted(search_points) == sorted(doc["search"]["order"])
    for rel, g in grid_points.items():
        s = search_points[rel]
        assert (s["alpha_lower"], s["alpha_upper"]) == (g["alpha_lower"], g["alpha_upper"])
        assert s["profile"] == [g["alpha_lower"], g["alpha_upper"]]
        assert s["ndcg_cut_10"] == g["ndcg_cut_10"] and s["objective"] == pytest.approx(g["ndcg_cut_10"], abs=1e-5)
        assert (out / rel / "run.trec").read_bytes() == (grid_dir / rel / "run.trec").read_bytes()
        gm, sm = (json.loads((root / rel / "metrics.json").read_text()) for root in (grid_dir, out))
        assert sm["per_query"] == gm["per_query"] and sm["mean"] == gm["mean"]
        assert sm["provenance"]["merge"]["profile"] == s["profile"]
    for key in ("collection", "split", "split_layer", "num_layers", "n_queries", "n_ranked_docs", "dtype"):
        assert sdoc[key] == gdoc[key], key
    # selection reads the search like a grid: the same α
    a, b = select_from_grid(grid_dir), select_from_grid(out)
    assert (a["alpha_lower"], a["alpha_upper"], a["ndcg_cut_10"]) == (b["alpha_lower"], b["alpha_upper"],
                                                                      b["ndcg_cut_10"])


def test_seeded_search_repeats_itself_and_records_every_profile(models, tmp_path):
    runs = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        doc = run_search(models["source"], models["domain"], TINY_BEIR, tmp_path / name, groups=4, sampler="tpe",
                         seed=seed, budget=5, step=0.25, **COMMON)
        runs.append(doc)
        assert len(doc["points"]) == 5 and len(doc["search"]["order"]) == 5
        assert doc["bounds"] == [0, 1, 2, 3, 4]
        for p in doc["points"]:
            assert len(p["profile"]) == 4 and all(a in (0.0, 0.25, 0.5, 0.75, 1.0) for a in p["profile"])
            m = json.loads((tmp_path / name / p["dir"] / "metrics.json").read_text())
            values = [v["ndcg_cut_10"] for v in m["per_query"].values()]
            assert p["objective"] == pytest.approx(sum(values) / len(values), abs=1e-12)
            assert m["tags"]["profile"] == ",".join(map(repr, p["profile"]))
    key = [[(p["profile"], p["objective"], p["evaluation"]) for p in d["points"]] for d in runs]
    assert key[0] == key[1] and runs[0]["search"]["order"] == runs[1]["search"]["order"]
    assert runs[0]["search"]["order"] != runs[2]["search"]["order"]  # another seed, another search

    def digest(root):
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*.trec"))}

    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_objective_is_the_training_files_queries(models, tmp_path):
    qids = sorted({ln.split("\t")[0] for ln in (TINY_BEIR / "qrels" / "train.tsv").read_text().splitlines()[1:]})
    chosen = qids[::3]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"query_id": q, "query": "x", "positive_passages": [],
                                         "negative_passages": []}) + "\n" for q in chosen))
    doc = run_search(models["source"], models["domain"], TINY_BEIR, tmp_path / "s", groups=3, sampler="random",
                     budget=3, step=0.5, queries=train, **COMMON)
    assert doc["search"]["objective"]["n"] == len(chosen)
    for p in doc["points"]:
        m = json.loads((tmp_path / "s" / p["dir"] / "metrics.json").read_text())
        assert p["objective"] == pytest.approx(sum(m["per_query"][q]["ndcg_cut_10"] for q in chosen) / len(chosen))


@pytest.mark.parametrize("args,fragments", [
    (["--groups", "0"], ["--groups 0", "[1, 4]"]),
    (["--groups", "5"], ["--groups 5", "4 layers"]),
    (["--budget", "0"], ["--budget"]),
    (["--search", "bogus"], ["--search 'bogus'"]),
    (["--step", "1.5"], ["--step"]),
    (["--search", "grid", "--grid", "0,1.5"], ["--grid", "within [0, 1]"]),
    (["--groups", "3", "--split-layer", "1"], ["--split-layer", "2 groups"]),
    (["--alpha-lower", "0.5"], ["--alpha-lower", "--search"]),
])
def test_bad_search_input_is_one_error_line(models, tmp_path, args, fragments):
    out = tmp_path / "out"
    base = ["--source", models["source"], "--domain", models["domain"], "--collection", TINY_BEIR, "--out", out,
            "--device", "cpu"]
    if "--search" not in args:
        args = ["--search", "tpe", *args]
    p = run_bin("sweep.py", *base, *args)
    assert_one_error(p, *fragments)
    assert not out.exists() and leftovers(tmp_path) == []


def test_report_table_d_states_the_search_and_compares_it_with_the_grid(models, grid_dir, tmp_path):
    """A K = 3 search beside the grid, both picks merged, encoded and scored on test: Table D's train columns are
    the two artifacts' best scores, its test columns the paired comparison of the two results; the K = 2 grid keeps
    its heatmap, the search gets none."""
    import csv

    from mergeir.merging import merge

    search = tmp_path / "search"
    run_search(models["source"], models["domain"], TINY_BEIR, search, groups=3, sampler="random", seed=1, budget=4,
               step=0.5, **COMMON)
    grid_pick, search_pick = select_from_grid(grid_dir), select_from_grid(search)
    assert search_pick["alpha_lower"] is None and len(search_pick["profile"]) == 3 and search_pick["groups"] == 3
    results = tmp_path / "results"
    arms = {"merged": dict(alpha_lower=grid_pick["alpha_lower"], alpha_upper=grid_pick["alpha_upper"],
                           split_layer=SPLIT_LAYER),
            "search": dict(profile=search_pick["profile"])}
    for arm, alphas in arms.items():
        merge(models["source"], models["domain"], tmp_path / f"m-{arm}", dtype="float32", **alphas)
        run_bin("encode.py", "--model", tmp_path / f"m-{arm}", "--collection", TINY_BEIR, "--out",
                tmp_path / f"e-{arm}", "--device", "cpu", "--max-length", 48, check=True)
        tags = ([f"profile={','.join(map(repr, alphas['profile']))}"] if arm == "search" else
                [f"alpha_lower={alphas['alpha_lower']}", f"alpha_upper={alphas['alpha_upper']}"])
        run_bin("evaluate.py", "--embeddings", tmp_path / f"e-{arm}", "--collection", TINY_BEIR, "--out",
                results / arm, *[x for t in [f"arm={arm}", "setting=full", *tags] for x in ("--tag", t)],
                check=True)
    run_bin("report.py", "build", "--results", results, "--grid", grid_dir, "--grid", search, "--out",
            tmp_path / "report", check=True)
    (row,) = list(csv.DictReader((tmp_path / "report" / "table_d_search_vs_grid.csv").open()))
    assert (row["groups"], row["sampler"], row["budget"], row["seed"], row["evaluated"]) == ("3", "random", "4", "1",
                                                                                            "4")
    assert float(row["grid_train"]) == pytest.approx(grid_pick["ndcg_cut_10"], abs=1e-4)
    assert float(row["search_train"]) == pytest.approx(search_pick["ndcg_cut_10"], abs=1e-4)
    assert row["profile"] == ", ".join(f"{a:g}" for a in search_pick["profile"])
    per = {arm: json.loads((results / arm / "metrics.json").read_text())["per_query"] for arm in arms}
    diffs = [per["search"][q]["ndcg_cut_10"] - per["merged"][q]["ndcg_cut_10"] for q in per["merged"]]
    assert float(row["delta"]) == pytest.approx(sum(diffs) / len(diffs), abs=1e-4)
    assert int(row["n_queries"]) == len(diffs) and row["p_ttest"] != ""
    figures = sorted(p.name for p in (tmp_path / "report").glob("*.png"))
    assert figures == ["alpha_heatmap_tiny-beir_train.png"]
    assert "Table D" in (tmp_path / "report" / "report.md").read_text()
