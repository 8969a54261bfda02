"""Bad input round 3 (issue 23): the planner (bin/plan.py, mergeir.pipeline.tasks) and the experiment YAML it
reads (mergeir.experiment). Every refusal: exit 2, one last `error:` line naming the file and the key or line
(or plan.py's own option), no traceback, no --out, the inputs unchanged (tests/helpers_bad_input.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers_bad_input import Snapshot, assert_ok, assert_refused, cli
from helpers_cli import ROOT

TEST = ROOT / "data" / "test.yaml"
PAPER = ROOT / "data" / "paper.yaml"
FIXTURE = ROOT / "tests" / "fixtures" / "tiny-beir"
DOWNLOADED_SOURCE = """  tiny-source:
    repo_id: mergeir/downloaded
    revision: 0123456789abcdef0123456789abcdef01234567
    source: {source}
    layout: model
"""
TINY_SOURCE = """  tiny-source:
    tiny: source             # built, not downloaded: no revision to pin
    layout: model
"""


def _experiment(tmp_path: Path, *edits: tuple[str, str], append: str = "") -> Path:
    """data/test.yaml (its collection path made absolute) with each (old, new) replaced once, `append` at the end."""
    text = TEST.read_text(encoding="utf-8").replace("path: ../tests/fixtures/tiny-beir", f"path: {FIXTURE}")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    f = tmp_path / "exp.yaml"
    f.write_text(text + append, encoding="utf-8")
    return f


def _last_line(path: Path, pattern: str) -> int:
    """The 1-based number of the last line matching `pattern` (where a repeated key is written the second time)."""
    numbers = [i for i, ln in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if re.search(pattern, ln)]
    assert numbers, pattern
    return numbers[-1]


def _refused(tmp_path: Path, experiment: Path, *fragments: str, args=(), timeout: int = 120) -> str:
    snap = Snapshot(tmp_path, FIXTURE, TEST)
    p = cli("plan.py", "tasks", "--experiment", experiment, "--out", tmp_path / "plan", *args, timeout=timeout)
    line = assert_refused(p, *fragments, snapshot=snap)
    assert len(line) < 600, line  # one readable line, whatever the file holds
    return line


# ---------------------------------------------------------------- 1. a key written twice (YAML: the last one wins)


@pytest.mark.parametrize("edit, append, key, where", [
    (("eval_split: test", "eval_split: test\n    eval_split: train"), "", "eval_split", r"^    eval_split: train"),
    (("collections:\n", "collections:\n  tiny: {download: beir, path: x}\n"), "", "tiny", r"^  tiny:$"),
    (None, "merge: {method: linear, dtype: float32, split_layer: 2, grid: [0.0, 0.5, 1.0]}\n", "merge", r"^merge:"),
    (("quirks: {drop_first_qrel: false}", "quirks: {drop_first_qrel: false, drop_first_qrel: true}"), "",
     "drop_first_qrel", r"drop_first_qrel: true"),
    (("        v2: {alpha", "        v1: {alpha: [1.0, 1.0], epochs: 1}\n        v2: {alpha"), "", "v1",
     r"v1: \{alpha: \[1\.0, 1\.0\]"),
    (("  lr: 1.0e-3\n", "  lr: 1.0e-3\n  lr: 1.0e-1\n"), "", "lr", r"^  lr: 1\.0e-1"),
    (("  tiny-domain:\n", "  tiny-domain:\n    tiny: domain\n    layout: model\n  tiny-domain:\n"), "",
     "tiny-domain", r"^  tiny-domain:"),
    (("{collection: tiny, seed: 0, layers: 4}", "{collection: tiny, seed: 0, layers: 4, seed: 1}"), "", "seed",
     r"^tiny: \{"),
], ids=["collection-key", "collection", "section", "flow-mapping", "trial", "lora-key", "model", "tiny-key"])
def test_a_key_written_twice_is_refused_with_its_line(tmp_path, edit, append, key, where):
    f = _experiment(tmp_path, *([edit] if edit else []), append=append)
    _refused(tmp_path, f, str(f), f"duplicate key '{key}'", f"line {_last_line(f, where)}")


# ---------------------------------------------------------------- 2. a misspelt key silently keeping its default


@pytest.mark.parametrize("old, new, fragment", [
    ("method: linear", "methd: ties", "merge: unknown keys ['methd']"),
    ("  batch_size: 8\n\nevaluation", "  batch_sise: 4\n\nevaluation", "encoding: unknown keys ['batch_sise']"),
    ("sweep_depth: 48", "sweep_dept: 10", "evaluation: unknown keys ['sweep_dept']"),
    ("seed: 0, layers: 4}", "seed: 0, layer: 2}", "tiny: unknown keys ['layer']"),
], ids=["merge", "encoding", "evaluation", "tiny"])
def test_every_section_refuses_an_unknown_key(tmp_path, old, new, fragment):
    f = _experiment(tmp_path, (old, new))
    _refused(tmp_path, f, str(f), fragment)


# ---------------------------------------------------------------- 3. evaluation.metric: the one the study uses


@pytest.mark.parametrize("metric", ["map", "ndcg@10", "recall_100"])
def test_a_metric_selection_and_the_report_do_not_use_is_refused(tmp_path, metric):
    """Selection (mergeir.sweep.selection) and the report always score nDCG@10 (JQaRA: jqara_ndcg@10): any other
    `evaluation.metric` would be ignored while the study runs on nDCG@10."""
    f = _experiment(tmp_path, ("metric: ndcg_cut_10", f"metric: {metric}"))
    _refused(tmp_path, f, str(f), "evaluation.metric", repr(metric), "ndcg_cut_10")


# ---------------------------------------------------------------- 4. --check-paths: every local path


@pytest.mark.parametrize("old, new, key", [
    (TINY_SOURCE, DOWNLOADED_SOURCE, "models.tiny-source.source"),
    ("deepspeed: null", "deepspeed: {source}", "lora.deepspeed"),
], ids=["model-source", "lora-deepspeed"])
def test_check_paths_checks_a_model_source_and_the_deepspeed_config(tmp_path, old, new, key):
    f = _experiment(tmp_path, (old, new.format(source="no-such-path")))
    _refused(tmp_path, f, str(f), f"{key}: 'no-such-path' does not exist")
    # PLAN (in a container that sees only the experiment file) leaves the check to main.nf
    assert_ok(cli("plan.py", "tasks", "--experiment", f, "--out", tmp_path / "unchecked", "--no-check-paths"))
    # beside the experiment file, of the right kind (a model folder, a DeepSpeed JSON file): accepted, and planned
    # as a LOCAL input
    (tmp_path / "present").mkdir() if key.endswith("source") else (tmp_path / "present").write_text("{}")
    f = _experiment(tmp_path, (old, new.format(source="present")))
    assert_ok(cli("plan.py", "tasks", "--experiment", f, "--out", tmp_path / "plan"))
    assert "present" in {r["path"] for r in json.loads((tmp_path / "plan" / "LOCAL.json").read_text())}


# ---------------------------------------------------------------- 5. grid alphas the sweep cannot tell apart


@pytest.mark.parametrize("grid, fragment", [
    ("[0.0, 0.5, 0.50000000001, 1.0]", "0.50000000001 and 0.5"),
    ("[0.0, 0.5, 0.9999999999999, 1.0]", "1.0 and 0.9999999999999"),
])
def test_grid_alphas_the_sweep_counts_as_one_are_refused_by_the_planner(tmp_path, grid, fragment):
    """sweep.py refuses them (alphas.parse_grid) hours into a run; the planner applies the same function."""
    f = _experiment(tmp_path, ("grid: [0.0, 0.5, 1.0]", f"grid: {grid}"))
    _refused(tmp_path, f, str(f), "merge.grid", fragment)


# ---------------------------------------------------------------- 6. values Python cannot hold


@pytest.mark.parametrize("old, new, where", [
    ("seed: 0, layers", "seed: 1" + "0" * 5000 + ", layers", r"^tiny: "),
    ("max_steps: 6}", "max_steps: 6" + "0" * 5000 + "}", r"max_steps: 6"),
    ("name: mergeir-test", "name: 2024-02-30", r"^name: "),
], ids=["5000-digit-seed", "5000-digit-steps", "30-february"])
def test_a_value_python_cannot_hold_is_one_error_with_its_line(tmp_path, old, new, where):
    f = _experiment(tmp_path, (old, new))
    _refused(tmp_path, f, str(f), f"line {_last_line(f, where)}", "cannot read")


# ---------------------------------------------------------------- 7. shard counts


@pytest.mark.parametrize("args, fragment", [
    (["--encode-shards", "1000000"], "--encode-shards"),
    (["--encode-shards", "1001"], "at most 1000"),
    (["--encode-shards", "9" * 5000], "too many"),
], ids=["million", "past-the-bound", "5000-digits"])
def test_absurd_shard_counts_are_refused_at_once(tmp_path, args, fragment):
    """--encode-shards 1000000 never returned (planning was quadratic in the shard count)."""
    _refused(tmp_path, _experiment(tmp_path), fragment, args=args, timeout=60)


def test_absurd_shard_counts_in_the_pipeline_params_are_refused(tmp_path):
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"encode_shards": "1000000"}))
    _refused(tmp_path, _experiment(tmp_path), "--encode_shards", "at most 1000", args=["--params", params], timeout=60)


def test_planning_is_linear_in_the_shard_count(tmp_path):
    """The paper's whole plan at the largest --encode-shards: 48,000 ENCODE tasks planned in seconds (each task
    used to scan every earlier one: the same plan took many minutes)."""
    out = tmp_path / "plan"
    p = cli("plan.py", "tasks", "--experiment", PAPER, "--out", out, "--allow-unpinned", "true",
            "--alpha-selection", "grid", "--encode-shards", "1000", timeout=90)
    assert_ok(p)
    assert len(json.loads((out / "ENCODE.json").read_text())) == 48 * 1000


# ---------------------------------------------------------------- 8. plan.py names its own options


@pytest.mark.parametrize("args, option, fragment", [
    (["--allow-unpinned", "maybe"], "--allow-unpinned", "'maybe' is not true or false"),
    (["--encode-shards", "0"], "--encode-shards", "must be >= 1"),
    (["--sweep-shards", "x"], "--sweep-shards", "'x' is not a whole number"),
    (["--alpha-selection", "grid", "--sweep-shards", "4"], "--sweep-shards", "the grid has 3 alpha_lower values"),
    (["--alpha-selection", "best"], "--alpha-selection", "'best' is not one of paper, grid"),
], ids=["allow-unpinned", "encode-shards", "sweep-shards", "sweep-shards-past-the-grid", "alpha-selection"])
def test_plan_py_errors_name_plan_py_options(tmp_path, args, option, fragment):
    """plan.py's options are spelt with dashes; PLAN runs plan.py with the pipeline's params (underscores)."""
    _refused(tmp_path, _experiment(tmp_path), f"{option} (pipeline: --{option[2:].replace('-', '_')})", fragment,
             args=args)


def _options(script: str, command: str) -> set[str]:
    p = cli(script, command, "--help")
    assert p.returncode == 0, p.stderr
    return set(re.findall(r"^\s+(--[a-z][a-z-]*)", p.stdout, re.M)) - {"--help", "--force"}


def test_interfaces_doc_lists_every_planner_and_make_tiny_option():
    doc = (ROOT / "docs" / "interfaces.md").read_text(encoding="utf-8")
    missing = []
    for script, command in (("plan.py", "tasks"), ("plan.py", "chosen"), ("make_tiny.py", "models")):
        entry = next(ln for ln in re.split(r"\n- ", doc) if ln.startswith(f"`{script} {command}")
                     or f"`{script} {command} " in ln)
        start = entry.index(f"{script} {command}")
        missing += [f"{script} {command} {o}" for o in sorted(_options(script, command))
                    if o not in entry[start:] and o.replace("--", "--no-") not in entry[start:]]
    assert not missing, missing


# ---------------------------------------------------------------- hostile files


BOMB = "".join(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n"
               for i in range(10))


@pytest.mark.parametrize("edits, append, fragment", [
    ((), "null: 1\nfoo: 2\n", "top level: unknown keys"),
    ((("merge:\n", "merge:\n  1: 2\n  foo: 3\n"),), "", "merge: unknown keys"),
    ((("name: mergeir-test", "name: " + "[" * 5000 + "]" * 5000),), "", "line 6"),
    ((("name: mergeir-test", "name: " + "{a: " * 3000 + "1" + "}" * 3000),), "", "line 6"),
    ((("name: mergeir-test", "name: mergeir-test\nreference:\n" + BOMB),
      ("target_modules: [q_proj, k_proj, v_proj, o_proj, down_proj, up_proj, gate_proj]", "target_modules: *l9")),
     "", "alias"),
], ids=["null-and-text-keys", "number-and-text-keys", "nested-lists", "nested-mappings", "billion-laughs"])
def test_hostile_yaml_is_one_error(tmp_path, edits, append, fragment):
    f = _experiment(tmp_path, *edits, append=append)
    _refused(tmp_path, f, str(f), fragment, timeout=60)


def test_a_control_character_is_one_error_with_its_line(tmp_path):
    f = _experiment(tmp_path, ("name: mergeir-test", "name: merge\x00ir"))
    _refused(tmp_path, f, str(f), "line 6", "#x0000")


@pytest.mark.parametrize("old, new, fragment", [
    ("seed_base: 0, steps", "seed_base: -5, steps", "settings.limited.seed_base"),
    ("seed: 0, layers", "seed: 123456789012345678901234567890, layers", "tiny.seed"),
    ("max_length: 64\n  dtype", "max_length: 100000000000000000000000\n  dtype", "encoding.max_length"),
    ("temperature: 0.01", "temperature: .inf", "lora.temperature"),
    ("  seed: 42\n", "  seed: 99999999999999999999\n", "lora.seed"),
    ("        v2: {alpha: [1.0, 0.5], epochs: 2}", "        v0: {alpha: [1.0, 0.5], epochs: 2}",
     "collections.tiny.trials.limited.v0"),
    ("        v2: {alpha", "        ? v" + "1" * 5000 + "\n        : {alpha", "collections.tiny.trials.limited.v111"),
    ("    tiny: domain\n", "    tiny: domain\n    revision: 0123456789abcdef0123456789abcdef01234567\n",
     "models.tiny-domain.revision"),
], ids=["negative-seed", "huge-seed", "huge-max-length", "infinite-temperature", "huge-lora-seed", "trial-v0", "trial-5000-digits",
        "revision-of-a-tiny-model"])
def test_numbers_and_names_downstream_stages_cannot_use_are_refused(tmp_path, old, new, fragment):
    f = _experiment(tmp_path, (old, new))
    _refused(tmp_path, f, str(f), fragment)


def test_a_tiny_section_without_tiny_models_is_refused(tmp_path):
    """`tiny:` is read only when a model is built by make_tiny.py: otherwise its values would be ignored."""
    f = _experiment(tmp_path, (TINY_SOURCE, DOWNLOADED_SOURCE.format(source="x")),
                    ("  tiny-domain:\n    tiny: domain\n", "  tiny-domain:\n    repo_id: mergeir/d\n"
                     "    revision: 0123456789abcdef0123456789abcdef01234567\n"))
    _refused(tmp_path, f, str(f), "tiny: no model is built by make_tiny.py", args=["--no-check-paths"])


def test_the_refusals_need_no_subprocess_to_name_the_file(tmp_path):
    """load_experiment itself (report.py select-alpha --paper reads the same file) raises the one MergeirError."""
    from mergeir.errors import MergeirError
    from mergeir.experiment import load_experiment

    f = _experiment(tmp_path, ("eval_split: test", "eval_split: test\n    eval_split: train"))
    line = _last_line(f, r"eval_split: train")
    with pytest.raises(MergeirError, match=re.escape(f"{f}: invalid YAML at line {line}: duplicate key 'eval_split' "
                                                     f"(first at line {line - 1}")):
        load_experiment(f)
