"""Bad input class 2: no command destroys data. --out that is, contains or lies inside an input (symlinks
resolved) is refused by every stage; an existing folder is replaced only when it is this stage's previous output
(its marker file) or with --force; '.', '' and '..' are refused cleanly. Real CLIs, real artifacts, every input
and --out hashed before and after."""

import json
import os
import shutil

import pytest

from helpers_bad_input import Snapshot, assert_ok, assert_refused, cli, make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory, "data-loss", "results", "train", "grid")


def _trials(w, out, t=None):
    return ["prepare_training.py", "trials", "--train", w.train, "--out", out, "--trials", "1", "--queries", "2"]


def _evaluate(w, out, t=None, *extra):
    return ["evaluate.py", "--embeddings", w.embeddings, "--collection", w.collection, "--out", out, *extra]


# (command given the world, --out and tmp_path; --out given the world and tmp_path; a fragment of the error line)
LIGHT = {
    "evaluate_out_is_embeddings": (_evaluate, lambda w, t: w.embeddings, "is the input --embeddings"),
    "evaluate_out_is_collection": (_evaluate, lambda w, t: w.collection, "is the input --collection"),
    "evaluate_out_contains_inputs": (_evaluate, lambda w, t: w.root, "contains the input"),
    "evaluate_out_inside_embeddings": (_evaluate, lambda w, t: w.embeddings / "run", "lies inside the input --embeddings"),
    "evaluate_out_symlink_to_embeddings": (
        _evaluate, lambda w, t: (t / "link").symlink_to(w.embeddings) or t / "link", "is the input --embeddings"),
    "report_out_is_results": (lambda w, o, t: ["report.py", "build", "--results", w.results, "--out", o],
                              lambda w, t: w.results, "is the input --results"),
    "report_out_is_a_result_found_through_a_symlink": (
        lambda w, o, t: ["report.py", "build", "--results", t / "res", "--out", o],
        lambda w, t: ((t / "res").mkdir(), (t / "res" / "s").symlink_to(w.results), w.results)[2],
        "contains the input"),
    "select_alpha_out_is_grid_json": (
        lambda w, o, t: ["report.py", "select-alpha", "--grid", w.grid, "--out", o],
        lambda w, t: w.grid / "grid.json", "lies inside the input --grid"),
    "trials_out_holds_the_training_file": (_trials, lambda w, t: w.train.parent, "contains the input --train"),
    "download_model_out_is_source": (
        lambda w, o, t: ["download.py", "model", "mergeir/tiny-source", "--revision", "seed-0", "--source", o,
                      "--out", o], lambda w, t: w.models["source"], "is the input --source"),
    "download_collection_out_is_source": (
        lambda w, o, t: ["download.py", "collection", f"beir:{o}", "--out", o], lambda w, t: w.collection,
        "is the input --source"),
    "make_tiny_out_is_collection": (
        lambda w, o, t: ["make_tiny.py", "models", "--collection", o, "--out", o], lambda w, t: w.collection,
        "is the input --collection"),
    "merge_out_is_source": (
        lambda w, o, t: ["merge.py", "--source", o, "--domain", w.models["domain"], "--alpha-lower", "0.5",
                      "--alpha-upper", "0.5", "--out", o], lambda w, t: w.models["source"], "is the input --source"),
    "merge_out_inside_domain": (
        lambda w, o, t: ["merge.py", "--source", w.models["source"], "--domain", o.parent, "--alpha-lower", "0.5",
                      "--alpha-upper", "0.5", "--out", o], lambda w, t: w.models["domain"] / "merged",
        "lies inside the input --domain"),
}
HEAVY = {  # these CLIs import torch before the guard runs
    "encode_out_is_model": (
        lambda w, o, t: ["encode.py", "--model", o, "--collection", w.collection, "--out", o, "--device", "cpu"],
        lambda w, t: w.models["source"], "is the input --model"),
    "lora_train_out_is_model": (
        lambda w, o, t: ["lora_train.py", "--model", o, "--train", w.train, "--out", o, "--max-steps", "1",
                      "--device", "cpu"], lambda w, t: w.models["source"], "is the input --model"),
    "sweep_out_is_collection": (
        lambda w, o, t: ["sweep.py", "--source", w.models["source"], "--domain", w.models["domain"], "--collection", o,
                      "--out", o, "--device", "cpu"], lambda w, t: w.collection, "is the input --collection"),
    "mine_out_is_corpus": (
        lambda w, o, t: ["prepare_training.py", "mine", "--collection", o.parent, "--model", w.models["source"],
                      "--out", o, "--device", "cpu"], lambda w, t: w.collection / "corpus.jsonl",
        "lies inside the input --collection"),
}
CASES = [pytest.param(k, *v, id=k) for k, v in LIGHT.items()] + [
    pytest.param(k, *v, id=k, marks=pytest.mark.slow) for k, v in HEAVY.items()]


@pytest.mark.parametrize("name,command,out,fragment", CASES)
def test_out_never_replaces_an_input(world, tmp_path, name, command, out, fragment):
    o = out(world, tmp_path)
    snap = Snapshot(world.root, tmp_path)
    for force in ([], ["--force"]):  # --force overrides the replacement rule, never the guard
        assert_refused(cli(*command(world, o, tmp_path), *force), "--out", fragment, snapshot=snap)


# ---------------------------------------------------------------- the replacement rule


def _users_folder(tmp_path):
    mine = tmp_path / "my-notes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("two years of work\n")
    return mine


@pytest.mark.parametrize("command", [
    _evaluate,
    lambda w, o, t: ["report.py", "build", "--results", w.results, "--out", o],
    _trials,
    lambda w, o, t: ["download.py", "collection", f"beir:{w.collection}", "--out", o],
])
def test_a_folder_that_is_not_this_stages_output_is_refused_unless_forced(world, tmp_path, command):
    mine = _users_folder(tmp_path)
    snap = Snapshot(world.root, tmp_path)
    assert_refused(cli(*command(world, mine, tmp_path)), f"--out {mine}", "is not a previous", "--force",
                   snapshot=snap)
    assert_ok(cli(*command(world, mine, tmp_path), "--force"))
    assert not (mine / "thesis.tex").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-notes"]  # nothing left beside it


def test_another_stages_output_is_not_this_stages(world, tmp_path):
    """A results folder is not an embeddings folder: encode's marker is meta.json, evaluate's metrics.json."""
    other = tmp_path / "results"
    shutil.copytree(world.results, other)
    snap = Snapshot(world.root, tmp_path)
    assert_refused(cli("report.py", "build", "--results", world.results, "--out", other), "not a previous report",
                   "provenance.json", snapshot=snap)


def test_this_stages_previous_output_is_replaced(world, tmp_path):
    out = tmp_path / "res"
    assert_ok(cli(*_evaluate(world, out, None, "--tag", "arm=first")))
    assert_ok(cli(*_evaluate(world, out, None, "--tag", "arm=second")))
    assert json.loads((out / "metrics.json").read_text())["tags"] == {"arm": "second"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]


def test_alpha_json_of_the_user_is_not_replaced(world, tmp_path):
    mine = tmp_path / "alpha.json"
    mine.write_text('{"my": "own file"}\n')
    snap = Snapshot(world.root, tmp_path)
    p = cli("report.py", "select-alpha", "--grid", world.grid, "--out", mine)
    assert_refused(p, f"--out {mine}", "not a previous select-alpha output", snapshot=snap)
    assert_ok(cli("report.py", "select-alpha", "--grid", world.grid, "--out", mine, "--force"))
    assert_ok(cli("report.py", "select-alpha", "--grid", world.grid, "--out", mine))  # now its own output


# ---------------------------------------------------------------- '.', '' and '..'


@pytest.mark.parametrize("out", [".", "", "..", "sub/..", "CWD"])
def test_dot_empty_and_parent_are_refused_cleanly(world, tmp_path, out):
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "keep.txt").write_text("x")
    out = str(work) if out == "CWD" else out
    snap = Snapshot(world.root, tmp_path)
    for force in ([], ["--force"]):
        p = cli(*_evaluate(world, out), *force, cwd=work)
        assert_refused(p, "--out", snapshot=snap)  # no traceback, no '..old-*' folder anywhere
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]
