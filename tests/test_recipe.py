"""The LoRA recipe has one definition (mergeir.training.recipe.Recipe): lora_train.py's options, `--recipe FILE`,
the experiment's `lora:` section and PLAN's recipe.json all come from it and agree."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers_cli import assert_one_error, run_bin
from helpers_nextflow import load_modules, render_templates, task_binding
from helpers_training import tiny_training_set

from mergeir.errors import MergeirError
from mergeir.experiment import load_experiment
from mergeir.pipeline.tasks import plan_tasks
from mergeir.training.recipe import Recipe, option_flag

ROOT = Path(__file__).resolve().parents[1]
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_every_recipe_field_is_an_option_of_lora_train():
    text = run_bin("lora_train.py", "--help", check=True).stdout
    flags = set(re.findall(r"--[a-z][a-z0-9-]*", text))
    for f in dataclasses.fields(Recipe):
        assert option_flag(f.name) in flags, f.name
        if f.type == "bool":
            assert "--no-" + option_flag(f.name)[2:] in flags, f.name


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    made = tiny_training_set(tmp_path_factory.mktemp("recipe"), negatives=3, max_length=32)
    return made["model"], made["train"]


def test_a_recipe_file_under_the_options_is_the_adapters_recipe(toy, tmp_path):
    model, train = toy
    given = Recipe(group_size=2, per_device_batch=2, grad_accum=1, lr=3e-3, query_max_length=32,
                   passage_max_length=32, gradient_checkpointing=False, pooling="mean", seed=5,
                   target_modules=("q_proj", "v_proj"), adam_betas=(0.8, 0.99))
    recipe_file = tmp_path / "recipe.json"
    recipe_file.write_text(json.dumps(given.to_json()))
    run_bin("lora_train.py", "--model", model, "--train", train, "--out", tmp_path / "a", "--max-steps", 1,
            "--recipe", recipe_file, "--seed", 7, "--lora-r", 4, "--device", "cpu", "--no-progress", check=True, env=ENV)
    first = json.loads((tmp_path / "a" / "provenance.json").read_text())["recipe"]
    assert first == given.replace(seed=7, lora_r=4).to_json()
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert config["r"] == 4 and sorted(config["target_modules"]) == ["q_proj", "v_proj"]
    # an adapter's provenance.json is a recipe file too: the second adapter is trained as the first
    run_bin("lora_train.py", "--model", model, "--train", train, "--out", tmp_path / "b", "--max-steps", 1,
            "--recipe", tmp_path / "a" / "provenance.json", "--device", "cpu", "--no-progress", check=True, env=ENV)
    assert json.loads((tmp_path / "b" / "provenance.json").read_text())["recipe"] == first


def test_an_older_adapter_is_still_a_recipe_file(tmp_path):
    """The committed control adapter predates the recipe clean-up: its recipe has the never-read query_prefix "".
    Read back, it is that recipe; a query_prefix mergeir never wrote is refused, not dropped."""
    old = ROOT / "examples" / "scifact_minilm" / "study_control" / "lora" / "control" / "provenance.json"
    doc = json.loads(old.read_text())
    assert doc["recipe"]["query_prefix"] == ""
    expected = {k: v for k, v in doc["recipe"].items() if k != "query_prefix"}
    assert Recipe.read(old).to_json() == expected
    doc["recipe"]["query_prefix"] = "query: "
    edited = tmp_path / "provenance.json"
    edited.write_text(json.dumps(doc))
    with pytest.raises(MergeirError, match=re.escape("unknown keys ['query_prefix']")):
        Recipe.read(edited)


@pytest.mark.parametrize("content, fragment", [
    ({"lr": "fast"}, "lr: expected float, got 'fast'"),
    ({"lora_rank": 8}, "unknown keys ['lora_rank']"),
    ({"adam_betas": [0.9]}, "adam_betas: expected a list of 2 numbers"),
    ({"warmup_ratio": 1.5}, "warmup_ratio: must be in [0, 1], got 1.5"),
    ({"normalize": 1}, "normalize: expected bool, got 1"),
    ([1, 2], "a recipe file holds a JSON object"),
])
def test_a_bad_recipe_file_is_refused_with_its_key(toy, tmp_path, content, fragment):
    model, train = toy
    recipe_file = tmp_path / "recipe.json"
    recipe_file.write_text(json.dumps(content))
    out = tmp_path / "ad"
    p = run_bin("lora_train.py", "--model", model, "--train", train, "--out", out, "--max-steps", 1,
                "--recipe", recipe_file, "--device", "cpu", "--no-progress", env=ENV)
    assert_one_error(p, str(recipe_file), fragment)
    assert not out.exists() and json.loads(recipe_file.read_text()) == content


def test_a_bad_recipe_option_is_refused_by_its_flag(toy, tmp_path):
    model, train = toy
    for args, fragment in ((["--pooling", "max"], "--pooling 'max' is not one of last, mean, cls"),
                           (["--lora-dropout", "1"], "--lora-dropout must be in [0, 1), got 1.0"),
                           (["--adam-betas", "0.9,x"], "--adam-betas: '0.9,x' is not a comma-separated list")):
        p = run_bin("lora_train.py", "--model", model, "--train", train, "--out", tmp_path / "ad", "--max-steps", 1,
                    *args, env=ENV)
        assert_one_error(p, fragment)
        assert not (tmp_path / "ad").exists()


def test_plan_hands_each_lora_task_the_experiments_recipe(tmp_path):
    """PLAN's row carries the experiment's recipe with the encoding's pooling; the task's template writes it to
    recipe.json, which reads back as that recipe."""
    text = (ROOT / "data" / "paper.yaml").read_text(encoding="utf-8")
    (tmp_path / "paper.yaml").write_text(text.replace("  pooling: last", "  pooling: mean"), encoding="utf-8")
    experiment = load_experiment(tmp_path / "paper.yaml", check_paths=False)
    rows, _ = plan_tasks(experiment, dataset="scifact", allow_unpinned="true", library="test")
    expected = experiment.lora.recipe.replace(pooling="mean")
    assert expected.target_modules and expected.precision == "fp16"  # the file's values, not the defaults
    mod = load_modules()["LORA_TRAIN"]
    scripts = render_templates([(mod.script, task_binding(mod, row)) for row in rows["LORA_TRAIN"]])
    for row, script in zip(rows["LORA_TRAIN"], scripts):
        assert "--recipe recipe.json" in row["options"] and "--lora-r" not in row["options"]
        folder = tmp_path / row["id"]
        folder.mkdir()
        writes = script.split("\nlora_train.py", 1)[0] + "\n"  # the here-document, not the training command
        subprocess.run(["bash", "-euo", "pipefail", "-c", writes], cwd=folder, check=True)
        assert Recipe.read(folder / "recipe.json") == expected


def test_the_experiments_lora_section_is_read_against_the_recipe(tmp_path):
    text = (ROOT / "data" / "test.yaml").read_text(encoding="utf-8")
    trimmed = tmp_path / "test.yaml"
    trimmed.write_text(re.sub(r"^  lora_dropout: .*\n", "", text, flags=re.M), encoding="utf-8")
    assert "lora_dropout" not in trimmed.read_text()
    assert load_experiment(trimmed, check_paths=False).lora.recipe.lora_dropout == Recipe().lora_dropout


@pytest.mark.parametrize("edit, message", [
    (lambda lora: lora.update(pooling="mean"), r"lora\.pooling: set encoding\.pooling"),
    (lambda lora: lora.update(lora_r="8"), r"lora\.lora_r: expected int, got '8'"),
    (lambda lora: lora.update(lora_r=0), r"lora\.lora_r: must be >= 1, got 0"),
    (lambda lora: lora.update(target_modules=[]), r"lora\.target_modules: expected a non-empty list"),
    (lambda lora: lora.update(rank=8), r"lora: unknown keys \['rank'\]"),
    (lambda lora: lora.pop("negatives"), r"lora\.negatives: missing"),
])
def test_a_bad_lora_section_names_its_key(tmp_path, edit, message):
    data = yaml.safe_load((ROOT / "data" / "test.yaml").read_text(encoding="utf-8"))
    edit(data["lora"])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(MergeirError, match=message) as refused:
        load_experiment(path, check_paths=False)
    assert str(path) in str(refused.value)
