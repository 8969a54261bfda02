"""Bad input round 3 (issue 23), beyond its examples: hostile inputs of the same classes that still crashed, were
silently accepted or destroyed an input after the first round of fixes. Each refusal: exit 2, no traceback, the
last stderr line is the only `error:` line and names the file or option, nothing created at --out, the inputs
unchanged (tests/helpers_bad_input.py). Experiment files are variants of data/test.yaml (test_bad_input_planner)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from helpers_bad_input import (Snapshot, assert_ok, assert_refused, cli, edit_json, full_file_system, make_world,
                               partial_grids)
from test_bad_input_planner import FIXTURE, _experiment, _last_line, _refused

# ---------------------------------------------------------------- the experiment YAML

ANCHORS = ("name: mergeir-test", "name: mergeir-test\nreference: {b1: &b1 {method: linear}, b2: &b2 {method: ties}}")


@pytest.mark.parametrize("edits, fragment, where", [
    ((ANCHORS, ("merge:\n  method: linear\n", "merge:\n  <<: *b1\n  <<: *b2\n")), "duplicate key '<<'", r"<<: \*b2"),
    ((("merge:\n  method: linear\n", "merge:\n  <<: [{method: linear}, {method: ties}]\n"),),
     "key 'method' is merged from two mappings", r"<<: \["),
], ids=["merge-key-twice", "merged-mappings-share-a-key"])
def test_merge_keys_that_would_drop_a_value_are_refused(tmp_path, edits, fragment, where):
    """Were accepted: YAML keeps the later `<<` (ties) but the earlier list item (linear), silently."""
    f = _experiment(tmp_path, *edits)
    _refused(tmp_path, f, str(f), fragment, f"line {_last_line(f, where)}")


@pytest.mark.parametrize("old, new", [
    ("max_steps: 6}", "max_steps: 010}"),  # YAML 1.1 (PyYAML): 8; YAML 1.2: 10
    ("seed: 0, layers", "seed: 00, layers"),
    ("depth: 100", "depth: 1:40"),  # base 60: 100; YAML 1.2: the text '1:40'
    ("lr: 1.0e-3", "lr: 1:30.5"),
], ids=["octal", "zero-zero", "base-60", "base-60-float"])
def test_a_number_yaml_versions_read_differently_is_refused(tmp_path, old, new):
    f = _experiment(tmp_path, (old, new))
    _refused(tmp_path, f, str(f), f"line {_last_line(f, re.escape(new))}", "ambiguous number")


def test_grid_alphas_near_zero_closer_than_1e_9_are_one_alpha(tmp_path):
    """Were two grid points (a relative tolerance holds 0.0 and 1e-11 apart): their merges are the same weights."""
    from mergeir.errors import MergeirError
    from mergeir.merging import parse_grid

    f = _experiment(tmp_path, ("grid: [0.0, 0.5, 1.0]", "grid: [0.0, 1.0e-11, 0.5, 1.0]"))
    _refused(tmp_path, f, str(f), "merge.grid", "1e-11 and 0.0 are one alpha")
    with pytest.raises(MergeirError, match="1e-11 and 0.0 are one alpha"):  # the sweep's --grid, same rule
        parse_grid("0,1e-11,1")
    assert parse_grid("0,1e-05,1") == [0.0, 1e-05, 1.0]


@pytest.mark.parametrize("old, new, fragment", [
    ("deepspeed: null", "deepspeed: conf", "lora.deepspeed: 'conf' is a folder, not a file"),
    (f"path: {FIXTURE}", f"path: {FIXTURE}/corpus.jsonl", "is a file, not a folder or zip"),
    (f"path: {FIXTURE}", 'path: ""', "collections.tiny.path: is empty"),  # "" was the experiment's own folder
    (f"path: {FIXTURE}", "path: loop", "collections.tiny.path: 'loop' is a broken link or a symlink loop"),
], ids=["deepspeed-a-folder", "collection-a-file", "collection-empty", "collection-a-symlink-loop"])
def test_a_local_path_of_the_wrong_kind_is_refused(tmp_path, old, new, fragment):
    """Were accepted by --check-paths (it asked only whether the path exists): LORA_TRAIN or PREPARE_COLLECTION
    failed hours later."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    f = _experiment(tmp_path, (old, new))
    _refused(tmp_path, f, str(f), fragment)


def test_plan_never_replaces_the_folder_holding_the_experiment(tmp_path):
    """`plan.py tasks --out` wrote with no output contract: --out the experiment's own folder deleted the YAML
    (and everything beside it), any other folder was replaced too. Now --out guards the experiment file, and an
    existing folder is replaced only when it is an earlier plan (plan.json)."""
    f = _experiment(tmp_path)
    (tmp_path / "notes.txt").write_text("mine\n")
    snap = Snapshot(tmp_path)
    assert_refused(cli("plan.py", "tasks", "--experiment", f, "--out", tmp_path), f"--out {tmp_path} contains the "
                   f"input --experiment {f}", snapshot=snap)
    other = tmp_path / "other"
    other.mkdir()
    (other / "x").write_text("y")
    snap = Snapshot(tmp_path)
    assert_refused(cli("plan.py", "tasks", "--experiment", f, "--out", other), f"--out {other}",
                   "is not a previous plan output", snapshot=snap)
    for _ in range(2):  # a new folder, then that plan replaced by the next
        assert_ok(cli("plan.py", "tasks", "--experiment", f, "--out", tmp_path / "plan"))
    assert json.loads((tmp_path / "plan" / "plan.json").read_text())["stage"] == "plan"


@pytest.mark.parametrize("old, new, fragment", [
    ("budget: 6", "budget: 626", "merge.search.budget: 626 is more than the 625 distinct profiles"),  # 5 values ^ 4
    ("step: 0.25}", "step: 1.0e-300}", "merge.search.step: must be at least 1e-06"),
    ("layers: 4}", "layers: 1025}", "tiny.layers: must be at most 1024"),
], ids=["budget-past-the-lattice", "step-1e-300", "tiny-layers"])
def test_a_search_or_a_tiny_model_that_could_never_finish_is_refused(tmp_path, old, new, fragment):
    """Were accepted: the search proposed repeats for ever, optuna's Decimal lattice raised once the models were
    loaded, make_tiny built layers until memory ran out."""
    f = _experiment(tmp_path, (old, new))
    _refused(tmp_path, f, str(f), fragment)


@pytest.mark.parametrize("alpha, fragment", [
    ('{"alpha_lower": NaN, "alpha_upper": 0.5}', "alpha_lower is nan"),
    ('{"alpha_lower": true, "alpha_upper": 0.5}', "alpha_lower is True"),
    ('{"alpha_lower": 2, "alpha_upper": 0.5}', "alpha_lower is 2"),
    ('{"profile": [0.5, NaN, 1, 1], "alpha_lower": null, "alpha_upper": null}', "profile[1] is nan"),
], ids=["nan", "true", "past-one", "nan-in-a-profile"])
def test_plan_chosen_refuses_an_alpha_no_merge_takes(tmp_path, alpha, fragment):
    """Were planned: MERGE `--alpha-lower NaN` (id merged-...-aNaN_0.5) failed in the pipeline, retried; `true` was
    merged as 1.0."""
    assert_ok(cli("plan.py", "tasks", "--experiment", _experiment(tmp_path), "--out", tmp_path / "plan",
                  "--alpha-selection", "grid"))
    arms = [json.loads(r["arm"]) for r in json.loads((tmp_path / "plan" / "SELECT_ALPHA.json").read_text())]
    arm = next(a for a in arms if a.get("arm_tag") != "search") if "profile" not in alpha else \
        next(a for a in arms if a.get("arm_tag") == "search")
    (tmp_path / "arm.json").write_text(json.dumps(arm))
    (tmp_path / "alpha.json").write_text(alpha)
    snap = Snapshot(tmp_path)
    assert_refused(cli("plan.py", "chosen", "--arm", tmp_path / "arm.json", "--alpha", tmp_path / "alpha.json",
                       "--out", tmp_path / "chosen"), "alpha file has no numeric", fragment, snapshot=snap)


def test_plan_chosen_never_replaces_its_inputs_or_a_foreign_folder(tmp_path):
    """`plan.py chosen --out` wrote with no output contract: --out the folder holding arm.json/alpha.json deleted
    them, and alpha.json with a key written twice was read last-wins."""
    assert_ok(cli("plan.py", "tasks", "--experiment", _experiment(tmp_path), "--out", tmp_path / "plan",
                  "--alpha-selection", "grid"))
    arm = next(json.loads(r["arm"]) for r in json.loads((tmp_path / "plan" / "SELECT_ALPHA.json").read_text())
               if json.loads(r["arm"]).get("arm_tag") != "search")
    given = tmp_path / "given"
    given.mkdir()
    (given / "arm.json").write_text(json.dumps(arm))
    (given / "alpha.json").write_text('{"alpha_lower": 0.5, "alpha_upper": 0.5}')
    chosen = ["plan.py", "chosen", "--arm", given / "arm.json", "--alpha", given / "alpha.json"]
    snap = Snapshot(tmp_path)
    assert_refused(cli(*chosen, "--out", given), f"--out {given} contains the input --arm", snapshot=snap)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine\n")
    snap = Snapshot(tmp_path)
    assert_refused(cli(*chosen, "--out", tmp_path / "mine"), f"--out {tmp_path / 'mine'}", snapshot=snap)
    for _ in range(2):  # a new folder, then that output replaced by the next
        assert_ok(cli(*chosen, "--out", tmp_path / "chosen"))
    assert json.loads((tmp_path / "chosen" / "MERGE.json").read_text())[0]["id"].endswith("a0.5_0.5")
    (given / "alpha.json").write_text('{"alpha_lower": 0.5, "alpha_upper": 0.5, "alpha_lower": 1.0}')
    snap = Snapshot(tmp_path)
    assert_refused(cli(*chosen, "--out", tmp_path / "c2"), f"{given / 'alpha.json'}: invalid JSON: key "
                   "'alpha_lower' appears twice", snapshot=snap)


def test_a_folder_given_as_the_experiment_file_says_so(tmp_path):
    """Was "experiment file not found" for a folder that is there."""
    snap = Snapshot(tmp_path)
    assert_refused(cli("plan.py", "tasks", "--experiment", tmp_path, "--out", tmp_path / "plan"),
                   f"experiment file {tmp_path} is a folder", snapshot=snap)


# ---------------------------------------------------------------- values given on the command line


def test_an_error_naming_a_value_with_a_newline_is_still_one_line(tmp_path):
    """The message quoted the path as it is: its second half was the last stderr line, not the error."""
    snap = Snapshot(tmp_path)
    line = assert_refused(cli("evaluate.py", "--embeddings", tmp_path / "no\nsuch", "--collection", FIXTURE,
                              "--out", tmp_path / "out"), "no\\nsuch", snapshot=snap)
    assert line.endswith("no\\nsuch")


@pytest.mark.parametrize("command", [
    ["make_tiny.py", "models", "--collection", FIXTURE, "--seed", "9" * 30, "--out", "{out}"],  # was a traceback
    ["report.py", "build", "--results", FIXTURE, "--seed", "-1", "--out", "{out}"],
    ["sweep.py", "--source", "s", "--domain", "d", "--collection", FIXTURE, "--search", "tpe", "--seed", str(2**32),
     "--out", "{out}"],
], ids=["make-tiny-30-digits", "report-negative", "sweep-2-to-the-32"])
def test_a_seed_no_random_generator_takes_is_refused(tmp_path, command):
    out = tmp_path / "out"
    snap = Snapshot(tmp_path, FIXTURE)
    assert_refused(cli(*[str(out) if a == "{out}" else a for a in command]), "--seed: a seed must be within",
                   snapshot=snap)


@pytest.mark.parametrize("command, fragment", [
    (["sweep.py", "--source", "s", "--domain", "d", "--collection", FIXTURE, "--search", "tpe", "--groups", "2",
      "--budget", "442"], "--budget 442 is more than the 441 distinct profiles"),  # 21 values ^ 2
    (["sweep.py", "--source", "s", "--domain", "d", "--collection", FIXTURE, "--search", "tpe", "--step", "1e-300"],
     "--step must be at least 1e-06"),
    (["make_tiny.py", "models", "--collection", FIXTURE, "--layers", "1" + "0" * 30],
     "--layers must be at most 1024"),
    (["report.py", "build", "--results", FIXTURE, "--permutations", "1" + "0" * 30], "--permutations must be at most"),
    (["prepare_training.py", "trials", "--train", FIXTURE / "queries.jsonl", "--trials", "1" + "0" * 30],
     "--trials must be within [1, 1000]"),  # wrote trial files until the disk was full
], ids=["sweep-budget", "sweep-step", "make-tiny-layers", "report-permutations", "trials"])
def test_a_command_that_could_never_finish_is_refused(tmp_path, command, fragment):
    """Each ran for ever (or until memory ran out), or crashed after loading the models."""
    snap = Snapshot(tmp_path, FIXTURE)
    assert_refused(cli(*command, "--out", tmp_path / "out", timeout=120), fragment, snapshot=snap)


@pytest.mark.parametrize("command, given", [
    (["sweep.py", "--source", "s", "--domain", "d", "--collection", FIXTURE, "--cache-gib", "nan"],
     "--cache-gib nan"),  # was `ValueError: cannot convert float NaN to integer`
    (["sweep.py", "--source", "s", "--domain", "d", "--collection", FIXTURE, "--cache-gib", "inf"],
     "--cache-gib inf"),  # OverflowError
    (["lora_train.py", "--model", "m", "--train", "t", "--max-steps", "1", "--temperature", "inf"],
     "--temperature inf"),  # passed the positive check: every logit divided by inf, a loss of log(group size)
    (["merge.py", "--source", "s", "--domain", "d", "--alpha-lower", "0.5", "--alpha-upper", "0.5", "--density",
      "-inf"], "--density -inf"),
], ids=["cache-nan", "cache-inf", "temperature-inf", "density-inf"])
def test_a_non_finite_float_option_is_refused_before_the_command_runs(tmp_path, command, given):
    snap = Snapshot(tmp_path, FIXTURE)
    assert_refused(cli(*command, "--out", tmp_path / "out"), f"{given}: not a finite number", snapshot=snap)


@pytest.mark.parametrize("tags, fragment", [
    (["arm=source", "arm=merged"], "'arm' is given twice"),  # the last one won: a source row reported as merged
    (["alpha_lower=NaN"], "not a finite number"),  # json reads NaN: metrics.json held a NaN tag
    (["alpha_lower=-Infinity"], "not a finite number"),
])
def test_evaluate_refuses_a_tag_given_twice_or_not_finite(tmp_path, tags, fragment):
    snap = Snapshot(tmp_path, FIXTURE)
    args = [a for t in tags for a in ("--tag", t)]
    assert_refused(cli("evaluate.py", "--embeddings", tmp_path / "emb", "--collection", FIXTURE, *args,
                       "--out", tmp_path / "out"), f"--tag {tags[-1]!r}", fragment, snapshot=snap)


@pytest.mark.parametrize("command, file, edit, fragment", [
    (["evaluate.py", "--embeddings", "emb"], "collection.json", lambda text: '{"eval_split": "train", '
     '"eval_split": "test"}', "collection.json: invalid JSON: key 'eval_split' appears twice"),
    (["download.py", "collection"], "corpus.jsonl", lambda text: text.replace("{", '{"text": "x", ', 1),
     "corpus.jsonl:1: key 'text' appears twice"),
], ids=["collection-json", "corpus-line"])
def test_a_json_key_written_twice_in_a_collection_is_refused(tmp_path, command, file, edit, fragment):
    """Was read by json.loads: the last value silently won (the judged split, or a document's text)."""
    coll = tmp_path / "coll"
    shutil.copytree(FIXTURE, coll)
    (coll / file).write_text(edit((coll / file).read_text() if (coll / file).exists() else ""))
    args = [*command, f"beir:{coll}"] if command[0] == "download.py" else [*command, "--collection", coll]
    snap = Snapshot(tmp_path)
    assert_refused(cli(*args, "--out", tmp_path / "out"), str(coll / file) + fragment[len(file):], snapshot=snap)


@pytest.mark.parametrize("digits, fragment", [(40, "(40 characters) is out of range"),
                                              (5000, "(5000 characters) is not an integer")])
def test_a_qrels_score_no_evaluator_holds_is_one_short_line(tmp_path, digits, fragment):
    """40 digits: pytrec_eval's SystemError traceback; 5000: an error line 5000 characters long."""
    coll = tmp_path / "coll"
    shutil.copytree(FIXTURE, coll)
    qrels = coll / "qrels" / "test.tsv"
    lines = qrels.read_text().splitlines(keepends=True)
    lines[1] = lines[1].rsplit("\t", 1)[0] + "\t" + "9" * digits + "\n"
    qrels.write_text("".join(lines))
    snap = Snapshot(tmp_path)
    line = assert_refused(cli("evaluate.py", "--embeddings", tmp_path / "emb", "--collection", coll, "--out",
                              tmp_path / "out"), f"{qrels}:2: score '999", fragment, snapshot=snap)
    assert len(line) < 300, line


# ---------------------------------------------------------------- partial grids and shards


def _partial_grid(root: Path) -> Path:
    root.mkdir()
    (root / "grid.json").write_text(json.dumps({"collection": "tiny", "split": "train", "grid": [0.0, 1.0],
                                                "points": [], "partial": {"alpha_lower": [0.0]}}))
    return root


@pytest.mark.parametrize("command, out", [(["report.py", "select-alpha", "--grid"], "alpha.json"),
                                          (["report.py", "build", "--results"], "report")])
def test_a_partial_grid_is_neither_selected_on_nor_reported(tmp_path, command, out):
    """Were accepted: select-alpha chose among the rows one SWEEP_PART swept, the report drew them as the grid."""
    part = _partial_grid(tmp_path / "part")
    snap = Snapshot(tmp_path)
    assert_refused(cli(*command, part, "--out", tmp_path / out), str(part / "grid.json"), "a partial grid",
                   "bin/gather.py grid", snapshot=snap)


def _shard(root: Path, index: int, meta: str) -> Path:
    root.mkdir()
    (root / "meta.json").write_text(meta.replace("INDEX", str(index)))
    return root


@pytest.mark.parametrize("meta, fragment", [
    ('{"shard": {"index": INDEX, "count": 1000000000000, "plan_sha256": "x"}}', "the run has 1000000000000"),
    ('{"dim": 99, "shard": {"index": INDEX, "count": 2, "plan_sha256": "x"}, "dim": 32}',
     "key 'dim' appears twice in one object"),
    ('{"n_corpus": 1' + "0" * 5000 + ', "shard": {"index": INDEX, "count": 2, "plan_sha256": "x"}}',
     "Exceeds the limit (4300 digits)"),
    ('{"x": ' + "[" * 100000 + "]" * 100000 + "}", "nested too deeply"),
], ids=["count-10-to-the-12", "key-twice", "5000-digits", "nested-100000-deep"])
def test_gather_refuses_a_shard_meta_no_run_wrote_at_once(tmp_path, meta, fragment):
    """Were a MemoryError (list(range(10**12))), silently the last `dim`, a ValueError and a RecursionError."""
    shards = [_shard(tmp_path / f"s{i}", i, meta) for i in range(2)]
    snap = Snapshot(tmp_path)
    assert_refused(cli("gather.py", "embeddings", "--shard", shards[0], "--shard", shards[1], "--out",
                       tmp_path / "out", timeout=60), fragment, snapshot=snap)


@pytest.fixture(scope="module")
def small_alphas(tmp_path_factory):
    """The sweep of grid (0, 1e-05) on the tiny world, whole and as its two partial grids (alpha_code names
    1e-05's folders `1e-05`: points/00_1e-05, points/1e-05_00, ...)."""
    from mergeir.sweep import run_sweep

    w = make_world(tmp_path_factory, "round3", "models", "collection")
    run_sweep(w.models["source"], w.models["domain"], w.collection, w.root / "whole", grid=[0.0, 1e-05],
              max_length=64, batch_size=8, device="cpu")
    return w.root / "whole", partial_grids(w.root / "whole", w.root / "parts")


def test_partial_grids_of_an_alpha_written_with_an_exponent_gather(small_alphas, tmp_path):
    """Was refused ("points[0].dir must be points/<al>_<au>", digits only) though the sweep wrote that folder."""
    whole, parts = small_alphas
    assert_ok(cli("gather.py", "grid", "--part", parts[1e-05], "--part", parts[0.0], "--out", tmp_path / "g"))
    got, want = json.loads((tmp_path / "g" / "grid.json").read_text()), json.loads((whole / "grid.json").read_text())
    assert got["points"] == want["points"] and "points/1e-05_1e-05" in {p["dir"] for p in got["points"]}


def test_gather_grid_refuses_a_point_filed_under_another_points_folder(small_alphas, tmp_path):
    """Two points' `dir` swapped: each point's metrics were copied under the other's alphas, silently."""
    _, parts = small_alphas
    part = tmp_path / "part"
    shutil.copytree(parts[0.0], part)
    edit_json(part / "grid.json", lambda d: (d["points"][0].update(dir=d["points"][1]["dir"]),
                                              d["points"][1].update(dir="points/00_00")))
    snap = Snapshot(tmp_path, parts[1e-05])
    assert_refused(cli("gather.py", "grid", "--part", part, "--part", parts[1e-05], "--out", tmp_path / "g"),
                   f"{part / 'grid.json'}: points[0].dir must be points/<al>_<au> of its alphas (points/00_00)",
                   snapshot=snap)


def test_gather_grid_on_a_full_file_system_is_one_error_line(small_alphas, tmp_path):
    """Was a traceback: shutil.copytree reports a full disk as shutil.Error (an OSError without errno)."""
    _, parts = small_alphas
    with full_file_system(tmp_path) as fill:
        for free_kib in (0, 8):
            fs = fill(free_kib)
            out = fs / "grid"
            snap = Snapshot(fs, *parts.values())
            assert_refused(cli("gather.py", "grid", "--part", parts[0.0], "--part", parts[1e-05], "--out", out),
                           f"--out {out}", "No space left on device", snapshot=snap)
