"""Bad input class 1: what used to give a wrong result with exit 0 is one `error:` line, exit 2, nothing touched.

Real artifacts (tiny models, the fixture collection, embeddings, results, a trained adapter, an α grid) and
the real CLIs in subprocesses; every refusal also proves the inputs and --out are byte-for-byte unchanged.
"""

import json
import shutil

import pytest

from helpers_bad_input import Snapshot, assert_ok, assert_refused, cli, make_world, write_rows


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory, "wrong-results", "results", "adapter", "grid")


# ---------------------------------------------------------------- the report mixes collections or qrels


def _other_qrels(world, tmp_path):
    """The collection with one judgment of the test qrels removed: same tag, different qrels."""
    changed = tmp_path / "changed"
    shutil.copytree(world.collection, changed)
    qrels = changed / "qrels" / "test.tsv"
    lines = qrels.read_text().splitlines(keepends=True)
    qrels.write_text("".join(lines[:1] + lines[2:]))
    emb = world.encode(world.models["source"], changed, tmp_path / "emb")
    return world.evaluate(emb, changed, tmp_path / "results" / "merged", arm="merged", setting="full",
                          alpha_lower=1.0, alpha_upper=1.0)


def _drop_first(world, tmp_path):
    from mergeir.evaluation import evaluate_embeddings

    out = tmp_path / "results" / "merged"
    evaluate_embeddings(world.embeddings, world.collection, out, drop_first_qrel=True,
                        tags={"collection": "tiny", "arm": "merged", "setting": "full", "alpha_lower": 1.0,
                              "alpha_upper": 1.0})
    return out


@pytest.mark.parametrize("make,field", [(_other_qrels, "collection checksum"), (_drop_first, "drop_first_qrel")])
def test_report_refuses_rows_scored_on_other_judgments(world, tmp_path, make, field):
    merged = make(world, tmp_path)
    snap = Snapshot(world.root, tmp_path)
    p = cli("report.py", "build", "--results", world.results.parent, "--results", tmp_path / "results",
                "--out", tmp_path / "report")
    assert_refused(p, "collection 'tiny'", field, str(world.results), str(merged), snapshot=snap)


def test_report_refuses_changed_qrels_in_old_metrics_too(world, tmp_path):
    """Metrics written before the qrels identity existed still carry the collection checksum."""
    merged = _other_qrels(world, tmp_path)
    doc = json.loads((merged / "metrics.json").read_text())
    del doc["provenance"]["qrels"]
    (merged / "metrics.json").write_text(json.dumps(doc))
    snap = Snapshot(world.root, tmp_path)
    p = cli("report.py", "build", "--results", world.results.parent, "--results", tmp_path / "results",
                "--out", tmp_path / "report")
    assert_refused(p, "collection checksum", str(merged), snapshot=snap)


# ---------------------------------------------------------------- training or tuning on the evaluation split


def test_mine_refuses_the_eval_split(world, tmp_path):
    snap = Snapshot(world.root, tmp_path)
    p = cli("prepare_training.py", "mine", "--collection", world.collection, "--model", world.models["source"],
                "--out", tmp_path / "t.jsonl", "--split", "test", "--device", "cpu")
    assert_refused(p, "--split test", "evaluation split", "--allow-eval-split", snapshot=snap)


def test_sweep_refuses_the_eval_split(world, tmp_path):
    snap = Snapshot(world.root, tmp_path)
    p = cli("sweep.py", "--source", world.models["source"], "--domain", world.models["domain"],
                "--collection", world.collection, "--out", tmp_path / "grid", "--split", "test", "--device", "cpu")
    assert_refused(p, "--split test", "evaluation split", snapshot=snap)


def test_lora_train_refuses_a_training_set_drawn_from_the_eval_split(world, tmp_path):
    """Mined on test with the explicit override, the sidecar says so, and training still refuses it."""
    from mergeir.collections import load_collection
    from mergeir.training.data import write_training_set
    from mergeir.training.mining import mine_hard_negatives

    examples, side = mine_hard_negatives(load_collection(world.collection), world.models["source"], split="test",
                                         k=2, max_length=64, allow_eval_split=True)
    train = tmp_path / "test_split.jsonl"
    write_training_set(train, examples, side)
    snap = Snapshot(world.root, tmp_path)
    p = cli("lora_train.py", "--model", world.models["source"], "--train", train, "--out", tmp_path / "ad",
                "--max-steps", "1", "--device", "cpu")
    assert_refused(p, str(train), "split 'test'", "--allow-eval-split", snapshot=snap)


# ---------------------------------------------------------------- an adapter on a model it does not fit


def test_encode_refuses_an_adapter_of_another_base_model(world, tmp_path):
    """Same shapes, other weights: peft would apply it silently; its recorded base fingerprint differs."""
    snap = Snapshot(world.root, tmp_path)
    p = cli("encode.py", "--model", world.models["other"], "--adapter", world.adapter, "--collection",
                world.collection, "--out", tmp_path / "emb", "--device", "cpu", "--no-progress")
    assert_refused(p, f"--adapter {world.adapter}", "--no-check-adapter-base", snapshot=snap)


@pytest.mark.slow
def test_encode_refuses_an_adapter_of_a_deeper_model(world, tmp_path):
    """The issue's case: an adapter of a 4-layer model on a 2-layer one, identity check off: peft ignores the
    tensors of layers 2 and 3 without a word; the key check does not."""
    from mergeir.training.recipe import Recipe
    from mergeir.training.trainer import train_lora

    deep = tmp_path / "deep_adapter"
    train_lora(world.models["deep"], world.train, deep, max_steps=1, device="cpu", progress=False,
               recipe=Recipe(group_size=2, per_device_batch=2, grad_accum=1, query_max_length=32,
                             passage_max_length=32, lora_r=2, lora_alpha=4))
    snap = Snapshot(world.root, tmp_path)
    p = cli("encode.py", "--model", world.models["source"], "--adapter", deep, "--collection", world.collection,
                "--out", tmp_path / "emb", "--device", "cpu", "--no-progress", "--no-check-adapter-base")
    assert_refused(p, f"--adapter {deep}", "tensors the model has no module for", "layers.2.", snapshot=snap)


@pytest.mark.slow
def test_encode_refuses_an_adapter_missing_the_models_layers(world, tmp_path):
    snap = Snapshot(world.root, tmp_path)
    p = cli("encode.py", "--model", world.models["deep"], "--adapter", world.adapter, "--collection",
                world.collection, "--out", tmp_path / "emb", "--device", "cpu", "--no-progress",
                "--no-check-adapter-base")
    assert_refused(p, f"--adapter {world.adapter}", "layers.2.", snapshot=snap)  # peft's own warning, or ours


@pytest.mark.slow
def test_encode_applies_another_base_when_told_to(world, tmp_path):
    p = cli("encode.py", "--model", world.models["other"], "--adapter", world.adapter, "--collection",
                world.collection, "--out", tmp_path / "emb", "--device", "cpu", "--no-progress",
                "--no-check-adapter-base")
    assert_ok(p)
    assert json.loads((tmp_path / "emb" / "meta.json").read_text())["adapter_base_checked"] is False


# ---------------------------------------------------------------- training rows without text


def _row(qid, query="a query", pos_text="a passage", title=""):
    return {"query_id": qid, "query": query, "positive_passages": [{"docid": "d1", "title": title, "text": pos_text}],
            "negative_passages": [{"docid": "d2", "title": "", "text": "other"}]}


@pytest.mark.parametrize("bad,fragment", [
    (_row("q2", query="  "), "query q2 has an empty query text"),
    (_row("q2", pos_text=""), "query q2: positive_passages[0] (d1) has an empty title and text"),
])
def test_training_rows_without_text_are_refused_with_file_and_line(world, tmp_path, bad, fragment):
    train = write_rows(tmp_path / "train.jsonl", [_row("q1"), bad, _row("q3")])
    snap = Snapshot(world.root, tmp_path)
    for cmd in (["prepare_training.py", "trials", "--train", train, "--out", tmp_path / "trials", "--trials", "1",
                 "--queries", "1"],
                ["lora_train.py", "--model", world.models["source"], "--train", train, "--out", tmp_path / "ad",
                 "--max-steps", "1", "--device", "cpu"]):
        assert_refused(cli(*cmd), f"{train}:2:", fragment, snapshot=snap)  # both read it before any model


# ---------------------------------------------------------------- α selection with another collection's trial


def _trial_on(world, tmp_path, name: str, edit=None):
    """A limited-data trial mined on a copy of the collection called `name` (same query ids)."""
    from mergeir.collections import load_collection
    from mergeir.training.data import write_training_set
    from mergeir.training.mining import mine_hard_negatives
    from mergeir.training.trials import sample_trials

    coll = tmp_path / name
    shutil.copytree(world.collection, coll)
    if edit:
        edit(coll)
    examples, side = mine_hard_negatives(load_collection(coll), world.models["source"], k=1, max_length=64)
    write_training_set(tmp_path / "train.jsonl", examples, side)
    return sample_trials(tmp_path / "train.jsonl", tmp_path / "trials", n=1, m=3)[0]


def _append_doc(coll):
    with open(coll / "corpus.jsonl", "a", encoding="utf-8") as f:
        f.write('{"_id": "extra", "title": "", "text": "a document the grid never saw"}\n')


@pytest.mark.parametrize("name,edit,fragment", [
    ("other", None, "names collection 'other'"),
    ("collection", _append_doc, "checksum"),  # same name, another version of the collection
])
def test_select_alpha_refuses_a_trial_of_another_collection(world, tmp_path, name, edit, fragment):
    trial = _trial_on(world, tmp_path, name, edit)
    snap = Snapshot(world.root, tmp_path)
    p = cli("report.py", "select-alpha", "--grid", world.grid, "--queries", trial, "--out", tmp_path / "a.json")
    assert_refused(p, f"--queries {trial}", fragment, snapshot=snap)


def test_select_alpha_accepts_a_trial_of_the_grids_collection(world, tmp_path):
    from mergeir.training.trials import sample_trials

    trial = sample_trials(world.train, tmp_path / "trials", n=1, m=3)[0]
    assert_ok(cli("report.py", "select-alpha", "--grid", world.grid, "--queries", trial, "--out",
                      tmp_path / "a.json"))
    assert json.loads((tmp_path / "a.json").read_text())["queries"]["n"] == 3


# ---------------------------------------------------------------- a truncated model recorded as a good download


def _truncate(keep):
    def cut(f):
        data = f.read_bytes()
        f.write_bytes(data[:keep(data)])
    return cut


@pytest.mark.parametrize("cut,fragment", [
    (_truncate(lambda d: len(d) - 100), "truncated"),
    (_truncate(lambda d: 8 + int.from_bytes(d[:8], "little")), "truncated"),  # the header alone
    (_truncate(lambda d: 0), "shorter than 8 bytes"),
])
def test_download_model_refuses_an_incomplete_safetensors(world, tmp_path, cut, fragment):
    src = tmp_path / "src"
    shutil.copytree(world.models["source"], src)
    cut(src / "model.safetensors")
    snap = Snapshot(world.root, tmp_path)
    p = cli("download.py", "model", "mergeir/tiny-source", "--revision", "seed-0", "--source", src,
                "--out", tmp_path / "dl")
    assert_refused(p, str(src / "model.safetensors"), fragment, snapshot=snap)


# ---------------------------------------------------------------- values validated at the edge


def _experiment(tmp_path, repo_root, old, new):
    text = (repo_root / "data" / "test.yaml").read_text()
    text = text.replace("path: ../tests/fixtures/tiny-beir", f"path: {repo_root / 'tests' / 'fixtures' / 'tiny-beir'}")
    assert old in text
    f = tmp_path / "exp.yaml"
    f.write_text(text.replace(old, new))
    return f


@pytest.mark.parametrize("old,new,fragment", [
    ("download: beir", "download: beri", "collections.tiny.download: 'beri' is not one of"),
    ("tests/fixtures/tiny-beir", "tests/fixtures/no-such-collection", "collections.tiny.path"),
])
def test_plan_refuses_unknown_download_and_missing_path(tmp_path, repo_root, old, new, fragment):
    experiment_file = _experiment(tmp_path, repo_root, old, new)
    snap = Snapshot(tmp_path)
    assert_refused(cli("plan.py", "tasks", "--experiment", experiment_file, "--out", tmp_path / "plan"),
                   str(experiment_file), fragment, snapshot=snap)


@pytest.mark.parametrize("args,fragment", [
    (["make_tiny.py", "models", "--layers", "0"], "--layers must be at least 1, got 0"),
    (["make_tiny.py", "models", "--layers", "-1"], "--layers must be at least 1, got -1"),
    (["report.py", "build", "--permutations", "0"], "--permutations must be >= 1, got 0"),
])
def test_impossible_numbers_are_refused(world, tmp_path, args, fragment):
    extra = ["--collection", world.collection] if args[0] == "make_tiny.py" else ["--results", world.results]
    snap = Snapshot(world.root, tmp_path)
    assert_refused(cli(*args, *extra, "--out", tmp_path / "out"), fragment, snapshot=snap)
