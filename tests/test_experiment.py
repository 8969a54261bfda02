"""data/*.yaml, mergeir.experiment and bin/plan.py: the experiment as data and the task lists the pipeline runs."""

import csv
import re
from pathlib import Path

import pytest
import yaml

from helpers_cli import assert_one_error, run_bin
from mergeir.errors import MergeirError
from mergeir.experiment import alpha_code, load_experiment, plan, published_alpha

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "data" / "paper.yaml"
TEST = ROOT / "data" / "test.yaml"
PAPER_MD = ROOT.parent / "shared" / "PAPER.md"
COLUMN = {"NFCorpus": "nfcorpus", "SciFact": "scifact", "MIRACL-ja": "miracl", "JQaRA": "jqara"}


@pytest.fixture(scope="module")
def paper():
    return load_experiment(PAPER)


def _md_table(text: str, first_header: str) -> list[list[str]]:
    """Rows of the markdown table whose header row starts with `| first_header |`."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if re.match(rf"\|\s*{re.escape(first_header)}\s*\|", ln))
    rows = []
    for ln in lines[start:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip().strip("|").split("|")])
    return [rows[0]] + rows[2:]  # drop the |---| line


def test_paper_structure(paper):
    assert paper.source_model == "e5-mistral"
    assert set(paper.collections) == {"nfcorpus", "scifact", "miracl", "jqara"}
    assert {c.domain_model for k, c in paper.collections.items() if k in ("nfcorpus", "scifact")} == {"biomistral"}
    assert {c.domain_model for k, c in paper.collections.items() if k in ("miracl", "jqara")} == {"japanese-stablelm"}
    assert paper.merge["split_layer"] == 16 and paper.merge["grid"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert paper.encoding == {"pooling": "last", "max_length": 4096, "dtype": "float32", "batch_size": 8}
    for c in paper.collections.values():
        assert [(t.setting, t.trial) for t in c.trials] == [("full", "full")] + [("limited", f"v{i}") for i in range(1, 11)]
        for t in c.trials:  # limited max_steps are 4 x epochs, the authors' early stop
            if t.setting == "limited":
                assert t.max_steps == 4 * t.epochs
    # the prompt's instruction for MIRACL and JQaRA is the same sentence
    assert paper.collections["miracl"].query_instruction == paper.collections["jqara"].query_instruction
    assert paper.collections["miracl"].use_titles is False and paper.collections["scifact"].use_titles is True


def test_paper_spot_values(paper):
    assert published_alpha(paper, "miracl", "full", "full") == (0.75, 0.75)
    assert published_alpha(paper, "miracl", "limited", "v3") == (1.0, 0.5)
    assert published_alpha(paper, "scifact", "limited", "v6") == (0.75, 0.5)
    assert published_alpha(paper, "nfcorpus", "limited", "v10") == (1.0, 0.75)
    assert paper.trial("scifact", "full", "full").max_steps == 51
    assert paper.trial("nfcorpus", "limited", "v8").max_steps == 44  # 11 epochs
    with pytest.raises(MergeirError, match="no trial limited/v11"):
        paper.trial("scifact", "limited", "v11")


def test_paper_matches_the_paper_tables(paper):
    """Every published alpha and LoRA step count equals the tables of shared/PAPER.md, parsed here."""
    if not PAPER_MD.is_file():
        pytest.skip(f"{PAPER_MD} not found")
    text = PAPER_MD.read_text(encoding="utf-8")
    alphas = _md_table(text, "setting")
    header = alphas[0]
    assert header[1:] == list(COLUMN)
    n = 0
    for row in alphas[1:]:
        if row[0].startswith("full"):
            setting, trial = "full", "full"
        else:
            m = re.fullmatch(r"limited (v\d+)", row[0])
            if not m:
                break  # the next table (steps) starts with its own header
            setting, trial = "limited", m.group(1)
        for name, cell in zip(header[1:], row[1:]):
            lower, upper = (float(x) for x in cell.split(","))
            assert published_alpha(paper, COLUMN[name], setting, trial) == (lower, upper), (name, setting, trial)
            n += 1
    assert n == 44
    steps = {r[0]: r[1:] for r in _md_table(text[text.index("Steps (early stopping"):], "setting")[1:]}
    full = next(v for k, v in steps.items() if k.startswith("full"))
    limited = next(v for k, v in steps.items() if k.startswith("limited"))
    for name, f, lim in zip(COLUMN, full, limited):
        key = COLUMN[name]
        assert paper.trial(key, "full", "full").max_steps == int(f)
        epochs = [int(x) for x in lim.split(",")]
        assert [paper.trial(key, "limited", f"v{i}").epochs for i in range(1, 11)] == epochs


def test_paper_revisions_pinned_or_marked(paper):
    for m in paper.models.values():
        if m.revision is None:
            assert "UNPINNED" in (m.revision_evidence or ""), m.key
        else:
            assert re.fullmatch(r"[0-9a-f]{40}", m.revision)
            assert m.revision_evidence, m.key
    assert paper.models["e5-mistral"].pinned and paper.models["biomistral"].pinned
    assert not paper.models["japanese-stablelm"].pinned


def test_plan_task_counts(paper):
    t = plan(paper, allow_unpinned=True)
    assert [len(t[k]) for k in ("models", "collections", "trials", "tiny", "lora")] == [3, 4, 44, 0, 1]
    t = plan(paper, dataset="scifact,nfcorpus", settings="full")  # both pinned: no --allow_unpinned needed
    assert {m["model"] for m in t["models"]} == {"e5-mistral", "biomistral"}
    assert [(r["collection"], r["trial"]) for r in t["trials"]] == [("scifact", "full"), ("nfcorpus", "full")]
    assert {r["collection"]: r["limited_trials"] for r in t["collections"]} == {"scifact": 0, "nfcorpus": 0}
    t = plan(paper, dataset="jqara", settings="limited", alpha_selection="grid", allow_unpinned=True)
    assert len(t["trials"]) == 10 and {r["alpha_selection"] for r in t["trials"]} == {"grid"}
    assert [r["seed"] for r in t["trials"]] == list(range(1, 11))
    assert t["collections"][0]["trial_seed"] == 1  # prepare_training.py trials: trial i draws with seed + i - 1


def test_plan_refuses_unpinned_and_bad_choices(paper):
    with pytest.raises(MergeirError, match=r"unpinned model revision for japanese-stablelm .*--allow_unpinned"):
        plan(paper, dataset="miracl")
    with pytest.raises(MergeirError, match="--dataset: unknown trec-covid"):
        plan(paper, dataset="trec-covid", allow_unpinned=True)
    with pytest.raises(MergeirError, match="--settings: unknown few"):
        plan(paper, settings="full,few")
    with pytest.raises(MergeirError, match="--alpha_selection"):
        plan(paper, dataset="scifact", alpha_selection="best")


def test_alpha_codes():
    assert [alpha_code(a) for a in (0, 0.25, 0.5, 0.75, 1.0)] == ["00", "025", "05", "075", "10"]


def test_test_yaml_same_shape_as_paper(paper):
    test = load_experiment(TEST)
    assert set(test.raw) <= set(paper.raw) | {"tiny"}
    assert {m.tiny for m in test.models.values()} == {"source", "domain"}
    coll = test.collections["tiny"]
    assert (test.resolve(coll.path) / "corpus.jsonl").is_file()
    assert [(t.setting, t.trial) for t in coll.trials] == [("full", "full"), ("limited", "v1"), ("limited", "v2")]
    assert test.merge["split_layer"] < test.tiny["layers"]
    t = plan(test)
    assert [len(t[k]) for k in ("models", "collections", "trials", "tiny")] == [2, 1, 3, 1]


def _write_variant(tmp_path, edit) -> Path:
    doc = yaml.safe_load(TEST.read_text())
    edit(doc)
    doc["collections"]["tiny"]["path"] = str(TEST.parent / doc["collections"]["tiny"]["path"])
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["collections"]["tiny"]["trials"]["limited"]["v1"].update(alpha=[1.5, 0.5]),
     r"collections\.tiny\.trials\.limited\.v1\.alpha\[0\]: alpha must be a number in \[0, 1\]"),
    (lambda d: d["collections"]["tiny"]["trials"]["limited"]["v1"].update(alpha=[0.25, 0.5]),
     r"collections\.tiny\.trials\.limited\.v1\.alpha: 0\.25 is not in merge\.grid"),
    (lambda d: d["models"]["tiny-source"].update(tiny=None, repo_id="x/y", revision="main"),
     r"models\.tiny-source\.revision: 'main' is not a 40-character commit id"),
    (lambda d: d["collections"]["tiny"].update(domain_model="nope"),
     r"collections\.tiny\.domain_model: 'nope' is not a key of models"),
    (lambda d: d["collections"]["tiny"]["trials"]["full"]["full"].pop("max_steps"),
     r"collections\.tiny\.trials\.full\.full: give max_steps"),
    (lambda d: d["collections"]["tiny"]["trials"]["limited"]["v2"].update(max_steps=5),
     r"max_steps 5 != epochs 2 x steps_per_epoch 3"),
    (lambda d: d.update(colections={}), r"top level: unknown keys \['colections'\]"),
    (lambda d: d["lora"].update(lr=-1), r"lora\.lr: must be > 0"),
    (lambda d: d["merge"].update(split_layer=4), r"merge\.split_layer: 4 must be below tiny\.layers 4"),
])
def test_invalid_experiments_name_the_key(tmp_path, edit, message):
    p = _write_variant(tmp_path, edit)
    with pytest.raises(MergeirError, match=message) as e:
        load_experiment(p)
    assert str(p) in str(e.value)


def test_plan_cli_writes_csvs(tmp_path):
    out = tmp_path / "tasks"
    p = run_bin("plan.py", "tasks", "--experiment", PAPER, "--out", out, "--dataset", "scifact", check=True)
    assert "2 models, 1 collections, 11 trials" in p.stdout
    rows = list(csv.DictReader((out / "trials.csv").open()))
    v6 = next(r for r in rows if r["trial"] == "v6")
    assert (v6["paper_alpha_lower"], v6["paper_alpha_upper"], v6["max_steps"]) == ("0.75", "0.5", "8")
    coll = next(csv.DictReader((out / "collections.csv").open()))
    assert coll["query_instruction"] == paper_instruction("scifact")
    tiny = list(csv.reader((out / "tiny.csv").open()))
    assert tiny == [["collection", "seed", "layers"]]  # header only: main.nf's splitCsv still reads it
    lora = next(csv.DictReader((out / "lora.csv").open()))
    assert lora["deepspeed"] == "../conf/deepspeed/ds_zero3.json" and lora["lora_r"] == "16"
    assert (PAPER.parent / lora["deepspeed"]).is_file()


def paper_instruction(key: str) -> str:
    return yaml.safe_load(PAPER.read_text())["collections"][key]["query_instruction"]


@pytest.mark.parametrize("args, fragment", [
    (["--dataset", "miracl"], "unpinned model revision for japanese-stablelm"),
    (["--settings", "nope"], "--settings: unknown nope"),
])
def test_plan_cli_bad_input(tmp_path, args, fragment):
    out = tmp_path / "tasks"
    p = run_bin("plan.py", "tasks", "--experiment", PAPER, "--out", out, *args)
    assert p.returncode == 2
    assert_one_error(p, fragment)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_plan_cli_missing_file(tmp_path):
    p = run_bin("plan.py", "tasks", "--experiment", tmp_path / "none.yaml", "--out", tmp_path / "t")
    assert_one_error(p, "experiment file not found")


def test_versions_cli(tmp_path):
    out = tmp_path / "versions.yml"
    run_bin("plan.py", "versions", "--process", "ENCODE", "--out", out, check=True)
    doc = yaml.safe_load(out.read_text())
    import mergeir
    import torch
    assert doc["ENCODE"]["mergeir"] == mergeir.__version__ and doc["ENCODE"]["torch"] == torch.__version__
