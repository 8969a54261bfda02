"""data/*.yaml and mergeir.experiment: the experiment as data (tests/test_pipeline_plan.py: the tasks planned from it)."""

import re
from pathlib import Path

import pytest
import yaml

from helpers_cli import assert_one_error, run_bin
from helpers_experiment import write_variant
from mergeir.errors import MergeirError
from mergeir.experiment import EncodingSpec, load_experiment, published_alpha
from mergeir.merging import alpha_code
from mergeir.pipeline.tasks import plan_tasks

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "data" / "paper.yaml"
TEST = ROOT / "data" / "test.yaml"
PAPER_MD = ROOT / "docs" / "paper.md"  # the project's own account of the paper
COLUMN = {"NFCorpus": "nfcorpus", "SciFact": "scifact", "MIRACL-ja": "miracl", "JQaRA": "jqara"}


@pytest.fixture(scope="module")
def paper():
    return load_experiment(PAPER)


def _doc_tables() -> dict[str, list[dict[str, str]]]:
    """Each `<!-- table: NAME -->` table of docs/paper.md as a list of {column header: cell}."""
    lines = PAPER_MD.read_text(encoding="utf-8").splitlines()
    tables = {}
    for i, ln in enumerate(lines):
        m = re.fullmatch(r"<!-- table: (\w+) -->", ln.strip())
        if not m:
            continue
        rows = []
        for row in lines[i + 1:]:
            if not row.startswith("|"):
                break
            rows.append([c.strip() for c in row.strip().strip("|").split("|")])
        header, body = rows[0], rows[2:]  # rows[1] is the |---| line
        assert body and all(len(r) == len(header) for r in body), m.group(1)
        tables[m.group(1)] = [dict(zip(header, r)) for r in body]
    return tables


def test_paper_structure(paper):
    assert paper.source_model == "e5-mistral"
    assert set(paper.collections) == {"nfcorpus", "scifact", "miracl", "jqara"}
    assert {c.domain_model for k, c in paper.collections.items() if k in ("nfcorpus", "scifact")} == {"biomistral"}
    assert {c.domain_model for k, c in paper.collections.items() if k in ("miracl", "jqara")} == {"japanese-stablelm"}
    assert paper.merge.split_layer == 16 and paper.merge.grid == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert paper.encoding == EncodingSpec(pooling="last", max_length=4096, dtype="float32", batch_size=8)
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


def test_paper_yaml_equals_the_account_in_docs(paper):
    """Every model, collection, recipe value, published alpha and LoRA step count of docs/paper.md's tables equals
    data/paper.yaml, and the tables cover every model, collection and trial of it."""
    tables = _doc_tables()
    assert {r["key"]: (r["Hugging Face id"], r["checkpoint layout"]) for r in tables["models"]} == {
        k: (m.repo_id, m.layout) for k, m in paper.models.items()}
    assert {r["key"] for r in tables["collections"]} == set(paper.collections)
    for r in tables["collections"]:
        c = paper.collections[r["key"]]
        assert (r["eval split"], int(r["queries"]), r["domain model"], r["query instruction"]) == (
            c.eval_split, c.n_eval_queries, c.domain_model, c.query_instruction), r["key"]
        assert c.use_titles == (r["document text"] == "title + text") and r["document text"] in ("title + text", "text")
    for section in ("encoding", "merge", "lora"):
        for r in tables[section]:
            assert yaml.safe_load(r["value"]) == paper.raw[section][r["key"]], (section, r["key"])
    assert {r["key"] for r in tables["lora"]} == set(paper.raw["lora"]) - {"seed", "deepspeed", "negatives"}

    cells = 0
    for alpha_row, steps_row in zip(tables["alphas"], tables["steps"], strict=True):
        setting, trial = alpha_row["setting"], alpha_row["trial"]
        assert (steps_row["setting"], steps_row["trial"]) == (setting, trial)
        for name, key in COLUMN.items():
            lower, upper = (float(x) for x in alpha_row[name].split(","))
            assert published_alpha(paper, key, setting, trial) == (lower, upper), (name, setting, trial)
            t = paper.trial(key, setting, trial)
            if setting == "full":
                assert steps_row[name] == f"{t.max_steps} steps", (name, trial)
            else:
                epochs, steps = map(int, re.fullmatch(r"(\d+) epochs? \((\d+) steps\)", steps_row[name]).groups())
                assert (t.epochs, t.max_steps) == (epochs, steps) and steps == 4 * epochs, (name, trial)
            cells += 1
    assert cells == sum(len(c.trials) for c in paper.collections.values()) == 44


def test_paper_revisions_pinned_or_marked(paper):
    for m in paper.models.values():
        if m.revision is None:
            assert "UNPINNED" in (m.revision_evidence or ""), m.key
        else:
            assert re.fullmatch(r"[0-9a-f]{40}", m.revision)
            assert m.revision_evidence, m.key
    assert paper.models["e5-mistral"].pinned and paper.models["biomistral"].pinned
    assert not paper.models["japanese-stablelm"].pinned


def _counts(rows):
    return {p: len(v) for p, v in rows.items() if v}


def test_plan_task_counts(paper):
    rows, _ = plan_tasks(paper, allow_unpinned="true", library="x")
    c = _counts(rows)
    assert (c["DOWNLOAD_MODEL"], c["PREPARE_COLLECTION"], c["LORA_TRAIN"], c.get("MAKE_TINY", 0)) == (3, 4, 44, 0)
    rows, _ = plan_tasks(paper, dataset="scifact,nfcorpus", settings="full", library="x")  # both pinned
    assert {r["id"] for r in rows["DOWNLOAD_MODEL"]} == {"model-e5-mistral", "model-biomistral"}
    assert [r["id"] for r in rows["LORA_TRAIN"]] == ["lora-scifact-full-full", "lora-nfcorpus-full-full"]
    assert not rows["MAKE_TRIALS"]
    rows, deferred = plan_tasks(paper, dataset="jqara", settings="limited", alpha_selection="grid",
                                allow_unpinned="true", library="x")
    assert len(rows["SELECT_ALPHA"]) == len(deferred) == 10 and not rows["MERGE"]
    (trials,) = rows["MAKE_TRIALS"]  # prepare_training.py trials: trial i draws with seed + i - 1
    assert "--trials 10 " in trials["options"] and trials["options"].endswith("--seed 1")


def test_plan_refuses_unpinned_and_bad_choices(paper):
    with pytest.raises(MergeirError, match=r"unpinned model revision for japanese-stablelm .*--allow_unpinned"):
        plan_tasks(paper, dataset="miracl", library="x")
    with pytest.raises(MergeirError, match="--dataset: unknown trec-covid"):
        plan_tasks(paper, dataset="trec-covid", allow_unpinned="true", library="x")
    with pytest.raises(MergeirError, match="--settings: unknown few"):
        plan_tasks(paper, settings="full,few", library="x")
    with pytest.raises(MergeirError, match="--alpha_selection"):
        plan_tasks(paper, dataset="scifact", alpha_selection="best", library="x")


def test_alpha_codes():
    assert [alpha_code(a) for a in (0, 0.25, 0.5, 0.75, 1.0)] == ["00", "025", "05", "075", "10"]


def test_test_yaml_same_shape_as_paper(paper):
    test = load_experiment(TEST)
    assert set(test.raw) <= set(paper.raw) | {"tiny"}
    assert {m.tiny for m in test.models.values()} == {"source", "domain"}
    coll = test.collections["tiny"]
    assert (test.resolve(coll.path) / "corpus.jsonl").is_file()
    assert [(t.setting, t.trial) for t in coll.trials] == [("full", "full"), ("limited", "v1"), ("limited", "v2")]
    assert test.merge.split_layer < test.tiny.layers
    rows, _ = plan_tasks(test, library="x")
    (tiny,) = rows["MAKE_TINY"]
    assert set(tiny["produces"]) == {"model-tiny-source", "model-tiny-domain"} and not rows["DOWNLOAD_MODEL"]
    assert (len(rows["PREPARE_COLLECTION"]), len(rows["LORA_TRAIN"])) == (1, 3)


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
    p = write_variant(tmp_path, edit)
    with pytest.raises(MergeirError, match=message) as e:
        load_experiment(p)
    assert str(p) in str(e.value)


def test_plan_cli_missing_file(tmp_path):
    p = run_bin("plan.py", "tasks", "--experiment", tmp_path / "none.yaml", "--out", tmp_path / "t")
    assert_one_error(p, "experiment file not found")
