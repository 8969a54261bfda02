"""PLAN's task files (mergeir.pipeline.tasks, bin/plan.py): the DAG as data, and the bugs that lived at the
boundary where main.nf used to rebuild it (each test names the bug it would have caught)."""

import hashlib
import itertools
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers_cli import assert_one_error, run_bin
from mergeir.errors import MergeirError
from mergeir.experiment import load_experiment
from mergeir.pipeline.tasks import LOCAL, PROCESSES, Options, alpha_text, plan_tasks, producers, write_tasks
from mergeir.provenance import library_digest

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "data" / "paper.yaml"
TEST = ROOT / "data" / "test.yaml"
JAR = Path.home() / ".cache" / "nf-static-tools" / "language-server-all.jar"  # fetched by scripts/nf-lint.sh
COMBOS = list(itertools.product(("full", "limited", "full,limited"), ("paper", "grid")))
# what each process's rows may hold: exactly the fields its command and publishing use
FIELDS = {p: {"id", "inputs", "options", "produces", "library"} for p in PROCESSES}
for p in ("PREPARE_COLLECTION", "PREPARE_TRAINING", "SWEEP", "SWEEP_PART", "GATHER_GRID", "ENCODE",
          "GATHER_EMBEDDINGS", "EVALUATE"):
    FIELDS[p] |= {"collection"}
for p in ("SAMPLE_FULL", "MAKE_TRIALS", "LORA_TRAIN", "SELECT_ALPHA"):
    FIELDS[p] |= {"collection", "train_file"}
FIELDS["LORA_TRAIN"] |= {"recipe"}  # the recipe the task writes to recipe.json (templates/lora_train.sh)
FIELDS["SELECT_ALPHA"] |= {"arm"}  # the merged arm `plan.py chosen` completes (written to arm.json by its template)


@pytest.fixture(scope="module")
def paper():
    return load_experiment(PAPER)


def _plan(exp, **kw):
    kw.setdefault("allow_unpinned", "true")
    return plan_tasks(exp, library="test-library", **kw)


@pytest.mark.parametrize("shards", [(1, 1), (3, 2)])
@pytest.mark.parametrize("settings, selection", COMBOS)
def test_every_reference_resolves_and_rows_hold_only_their_fields(paper, settings, selection, shards):
    rows, deferred = _plan(paper, settings=settings, alpha_selection=selection, encode_shards=shards[0],
                           sweep_shards=shards[1])
    known = producers(rows)
    for process in PROCESSES:
        for r in rows[process]:
            assert set(r) <= FIELDS[process], (process, set(r) - FIELDS[process])
            assert r["library"] == "test-library"
            for value in r["inputs"].values():
                for ref in value if isinstance(value, list) else [value]:
                    assert ref is None or ref in known or (process == "REPORT" and ref in PROCESSES)
            if process != "MAKE_TINY":  # the task's output folder is its one artifact (test below: MAKE_TINY)
                assert r["produces"] == {r["id"]: ""}, (process, r["produces"])
    if selection == "grid":
        assert not rows["MERGE"] and set(deferred) == {r["id"] for r in rows["SELECT_ALPHA"]}
    else:
        assert not deferred and not rows["SELECT_ALPHA"] and not rows["SWEEP"] and not rows["SWEEP_PART"]
    if shards == (1, 1):
        assert not rows["GATHER_EMBEDDINGS"] and not rows["GATHER_GRID"] and not rows["SWEEP_PART"]


def test_make_tiny_produces_each_model_at_its_subfolder():
    """bin/make_tiny.py models writes one folder holding source/ and domain/: each tiny model's id must resolve
    to its own subfolder (test.yaml: tiny-source is `tiny: source`, tiny-domain `tiny: domain`), never the
    folder itself, or the SWEEP and MERGE that read them get the wrong path."""
    rows, _ = _plan(load_experiment(TEST))
    (tiny,) = rows["MAKE_TINY"]
    assert tiny["produces"] == {"model-tiny-source": "source", "model-tiny-domain": "domain"}
    read = {ref for r in rows["SWEEP"] + rows["MERGE"] for ref in r["inputs"].values()}
    assert {"model-tiny-source", "model-tiny-domain"} <= read


def test_sharded_plan_scatters_and_gathers_to_the_unsharded_ids(paper):
    """--encode_shards N: every ENCODE becomes N tasks with --shard i --shards N, and a GATHER_EMBEDDINGS task
    writes the unsharded id, so EVALUATE's rows do not change at all. --sweep_shards M: M SWEEP_PART tasks cover
    the grid's alpha_lower values exactly once, and GATHER_GRID writes the grid SELECT_ALPHA reads."""
    base, _ = _plan(paper, dataset="scifact", alpha_selection="grid")
    rows, deferred = _plan(paper, dataset="scifact", alpha_selection="grid", encode_shards=3, sweep_shards=2)
    assert rows["EVALUATE"] == base["EVALUATE"]
    # SELECT_ALPHA reads the same grid; only the arm it plans (sharded encodes) differs
    bare = [{k: v for k, v in r.items() if k != "arm"} for r in rows["SELECT_ALPHA"]]
    assert bare == [{k: v for k, v in r.items() if k != "arm"} for r in base["SELECT_ALPHA"]]
    swept, _ = _plan(paper, dataset="scifact", alpha_selection="grid", sweep_shards=2)
    assert swept["SELECT_ALPHA"] == base["SELECT_ALPHA"]
    unsharded = {r["id"]: r for r in base["ENCODE"]}
    gathers = {r["id"]: r for r in rows["GATHER_EMBEDDINGS"]}
    assert set(gathers) == set(unsharded) and len(rows["ENCODE"]) == 3 * len(unsharded)
    shard_rows = {r["id"]: r for r in rows["ENCODE"]}
    for emb, g in gathers.items():
        assert g["inputs"]["parts"] == [f"{emb}-shard{i}of3" for i in range(3)]
        assert g["options"] == "embeddings " + " ".join(f"--shard parts/{p}" for p in g["inputs"]["parts"])
        for i, part in enumerate(g["inputs"]["parts"]):
            r = shard_rows[part]
            assert r["inputs"] == unsharded[emb]["inputs"]
            assert r["options"] == unsharded[emb]["options"] + f" --shard {i} --shards 3"
    (grid,) = base["SWEEP"]
    assert not rows["SWEEP"] and [g["id"] for g in rows["GATHER_GRID"]] == [grid["id"]]
    lowers = [re.findall(r"--alpha-lower (\S+)", r["options"]) for r in rows["SWEEP_PART"]]
    assert [a for part in lowers for a in part] == [alpha_text(a) for a in paper.merge.grid]
    assert [len(part) for part in lowers] == [3, 2]  # 5 values in 2 contiguous groups
    for r in rows["SWEEP_PART"]:
        assert r["inputs"] == grid["inputs"] and r["options"].startswith(grid["options"] + " --alpha-lower")
    for ctx in deferred.values():  # a grid-chosen alpha's merged arm is sharded the same way
        assert ctx["encode_shards"] == 3
    with pytest.raises(MergeirError, match=r"--sweep_shards\): 6 is too many \(at most 5: the grid has 5"):
        _plan(paper, dataset="scifact", alpha_selection="grid", sweep_shards=6)
    for bad in ("0", "two", "-1"):
        with pytest.raises(MergeirError, match="--encode_shards"):
            _plan(paper, encode_shards=bad)


def test_equal_merges_are_one_task(paper):
    """Bug: MERGE was keyed by collection, so nfcorpus/scifact (both BioMistral) and miracl/jqara merged the same
    pair twice. Now one MERGE per distinct (source, domain, alpha)."""
    rows, _ = _plan(paper)
    pairs = {(paper.collections[c].domain_model, alpha_text(t.alpha_lower), alpha_text(t.alpha_upper))
             for c in paper.collections for t in paper.collections[c].trials}
    assert len(rows["MERGE"]) == len(pairs) < sum(len(c.trials) for c in paper.collections.values())
    by_id = {r["id"]: r for r in rows["MERGE"]}
    scifact_v1 = next(r for r in rows["EVALUATE"] if r["id"] == "eval-scifact-merged-limited-v1")
    nfcorpus_full = next(r for r in rows["EVALUATE"] if r["id"] == "eval-nfcorpus-merged-full-full")
    # both chose (0.75, 1.0) with BioMistral: their embeddings come from the same merged model
    emb = {r["id"]: r for r in rows["ENCODE"]}
    m1 = emb[scifact_v1["inputs"]["embeddings"]]["inputs"]["model"]
    m2 = emb[nfcorpus_full["inputs"]["embeddings"]]["inputs"]["model"]
    assert m1 == m2 in by_id and "--alpha-lower 0.75 --alpha-upper 1" in by_id[m1]["options"]


@pytest.mark.parametrize("change", [{"settings": "full,limited"}, {"alpha_selection": "grid"}])
def test_a_harmless_option_change_keeps_every_shared_task_identical(paper, change):
    """Bug: whole collection/LoRA rows went into six processes as `val`, so adding the limited setting re-ran every
    source ENCODE, mining job, full LoRA and MERGE. A task present in both plans must be the same row."""
    base, _ = _plan(paper, settings="full", alpha_selection="paper")
    other, _ = _plan(paper, **{"settings": "full", "alpha_selection": "paper", **change})
    shared = 0
    for process in PROCESSES:
        before = {r["id"]: r for r in base[process]}
        for r in other[process]:
            if r["id"] in before and process != "REPORT":
                assert r == before[r["id"]], (process, r["id"])
                shared += 1
    assert shared >= 10


def test_library_digest_is_the_package_source_and_goes_into_every_row(paper):
    """Bug: a change in src/mergeir invalidated no task (Nextflow hashes only the bin/ scripts a command names)."""
    src = ROOT / "src" / "mergeir"
    h = hashlib.sha256()
    for f in sorted(src.rglob("*.py")):
        h.update(f.relative_to(src).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    assert library_digest().endswith("+" + h.hexdigest()[:16])
    rows, _ = plan_tasks(paper, dataset="scifact")
    assert {r["library"] for p in PROCESSES for r in rows[p]} == {library_digest()}
    for tpl in (ROOT / "modules" / "local" / "templates").glob("*.sh"):  # versions from their own script
        assert "plan.py versions" not in tpl.read_text()


def _groovy_read(files):
    if not JAR.is_file():
        pytest.skip("the nf-lang jar comes with scripts/nf-lint.sh (run it once)")
    p = subprocess.run(["java", "-cp", str(JAR), "groovy.ui.GroovyMain", str(ROOT / "tools/nf-static/read_tasks.groovy"),
                        *map(str, files)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return [json.loads(line) for line in p.stdout.splitlines()]


def test_groovy_reads_every_task_file_as_python_wrote_it(tmp_path):
    """Bug: splitCsv has no quote character, so every column after a quoted one (query_instruction, grid,
    target_modules) shifted. Task files are JSON read with splitJson's parser: every value arrives as written."""
    written = []
    for n, (settings, selection) in enumerate(COMBOS):
        for exp in (PAPER, TEST):
            out = tmp_path / f"{exp.stem}-{n}"
            params = {"settings": settings, "alpha_selection": selection, "allow_unpinned": "true"}
            write_tasks(out, *plan_tasks(load_experiment(exp), **params), load_experiment(exp), params)
            written += sorted(out.glob("[A-Z]*.json"))
    for got in _groovy_read(written):
        rows = json.loads(Path(got["file"]).read_text())
        assert got["rows"] == rows, got["file"]
        assert set(got["types"]) <= {"String", "null"}, got["types"]  # no number or boolean for Groovy to retype


def test_empty_and_stub_task_files_are_valid(tmp_path):
    """Bug: PLAN's stub wrote zero-byte CSVs, and an empty trials list had no header. Every task file is a JSON
    array, empty ones too, and PLAN's stub runs the real planner."""
    out = tmp_path / "t"
    run_bin("plan.py", "tasks", "--experiment", TEST, "--out", out, "--settings", "full", check=True)
    for process in (LOCAL, *PROCESSES):
        assert isinstance(json.loads((out / f"{process}.json").read_text()), list)
    assert json.loads((out / "MAKE_TRIALS.json").read_text()) == []
    plan_nf = (ROOT / "modules" / "local" / "plan.nf").read_text()
    assert plan_nf.count("template 'plan.sh'") == 2  # script and stub


def _readme_runs():
    text = (ROOT / "README.md").read_text() + (ROOT / "docs" / "pipeline.md").read_text()
    text = re.sub(r"\\\n\s*", " ", text)
    return [ln for ln in text.splitlines() if "nextflow run main.nf" in ln]


def test_documented_commands_plan(paper):
    """Bug: README's own `--dataset miracl` / `--dataset all` failed in PLAN (japanese-stablelm is unpinned)."""
    runs = _readme_runs()
    assert runs
    for ln in runs:
        if "-profile test" in ln or "--experiment" in ln or "<" in ln:  # the test profile, a user's file, a pattern
            continue
        opts = dict(re.findall(r"--(dataset|settings|alpha_selection|allow_unpinned|encode_shards|sweep_shards) (\S+)",
                               ln))
        plan_tasks(paper, dataset=opts.get("dataset", "all"), settings=opts.get("settings", "full,limited"),
                   alpha_selection=opts.get("alpha_selection", "paper"),
                   allow_unpinned=opts.get("allow_unpinned", "false"), encode_shards=opts.get("encode_shards", 1),
                   sweep_shards=opts.get("sweep_shards", 1), library="x")


def test_params_arrive_as_text(paper):
    """Bug: under the strict parser a command-line `--allow_unpinned false` is the String 'false' (truthy)."""
    with pytest.raises(MergeirError, match="unpinned model revision for japanese-stablelm"):
        plan_tasks(paper, dataset="miracl", allow_unpinned="false", library="x")
    plan_tasks(paper, dataset="miracl", allow_unpinned="true", library="x")
    with pytest.raises(MergeirError, match=r"--allow-unpinned \(pipeline: --allow_unpinned\): 'maybe'"):
        plan_tasks(paper, dataset="miracl", allow_unpinned="maybe", library="x")
    configs = "".join(p.read_text() for p in [ROOT / "nextflow.config", *ROOT.glob("conf/*.config")])
    for name in ("max_cpus", "publish_intermediates"):  # every use converts explicitly
        for use in re.findall(rf"params\.{name}[^,\]\n}}]*", configs):
            assert "as int" in use or ".toString()" in use or re.match(rf"params\.{name}\s*= params\.{name} \?:", use), use
    main = (ROOT / "main.nf").read_text()
    # PLAN gets every param as text in one JSON object
    assert not re.search(r"^\s*maxForks\s*=", configs, re.M) and '"${v}".toString()' in main


def test_no_empty_option_values(tmp_path):
    """Bug: an empty train_split rendered `--split --negatives 30`. Options are built from typed values with None
    left out, and a collection without labelled queries cannot plan a training setting at all."""
    assert Options().add("--split", None).add("--negatives", 30).tokens == ["--negatives", "30"]
    assert Options().add("--query-instruction", "it's a, b").text() == """--query-instruction 'it'"'"'s a, b'"""
    exp = yaml.safe_load(TEST.read_text())
    exp["collections"]["tiny"]["path"] = str(TEST.parent / exp["collections"]["tiny"]["path"])
    exp["collections"]["tiny"]["train_split"] = None
    p = tmp_path / "no-train.yaml"
    p.write_text(yaml.safe_dump(exp))
    with pytest.raises(MergeirError, match="train_split is missing"):
        plan_tasks(load_experiment(p), library="x")


def test_onComplete_parses_on_every_admitted_version():
    """Bug: an `onComplete:` section compiles only with Nextflow >= 25.10 and the strict parser."""
    main = (ROOT / "main.nf").read_text()
    assert not re.search(r"^\s*onComplete:\s*$", main, re.M) and "workflow.onComplete = {" in main
    assert "nextflowVersion = '!>=25.04.0'" in (ROOT / "nextflow.config").read_text()


def test_versions_concatenate_to_valid_yaml(tmp_path):
    """Bug: versions.yml from mixed SLURM nodes repeated a mapping key (invalid YAML). Items are list entries."""
    for i, process in enumerate(("ENCODE", "ENCODE", "MERGE")):
        run_bin("versions.py", "--process", process, "--out", tmp_path / f"{i}.yml", check=True)
    (tmp_path / "1.yml").write_text((tmp_path / "1.yml").read_text().replace("platform: '", "platform: 'other-node "))
    docs = yaml.safe_load("".join((tmp_path / f"{i}.yml").read_text() for i in range(3)))
    assert [d["process"] for d in docs] == ["ENCODE", "ENCODE", "MERGE"] and docs[0] != docs[1]
    assert docs[0]["library"] == library_digest()


def test_plan_cli(tmp_path):
    out = tmp_path / "tasks"
    p = run_bin("plan.py", "tasks", "--experiment", PAPER, "--out", out, "--dataset", "scifact", check=True)
    assert "11 LORA_TRAIN" in p.stdout
    rows = json.loads((out / "LORA_TRAIN.json").read_text())
    v6 = next(r for r in rows if r["id"] == "lora-scifact-limited-v6")
    assert "--max-steps 8 " in v6["options"] and v6["train_file"] == "v6.jsonl"
    assert "--deepspeed deepspeed.json" in v6["options"] and v6["inputs"]["deepspeed_config"] == "local-deepspeed"
    local = json.loads((out / "LOCAL.json").read_text())
    assert {"id": "local-deepspeed", "path": "../conf/deepspeed/ds_zero3.json"} in local
    for bad, fragment in ((["--dataset", "miracl"], "unpinned model revision for japanese-stablelm"),
                          (["--settings", "nope"], "--settings: unknown nope"),
                          (["--device", "tpu"], "--device: 'tpu'")):
        out2 = tmp_path / "bad"
        p = run_bin("plan.py", "tasks", "--experiment", PAPER, "--out", out2, *bad)
        assert p.returncode == 2 and not out2.exists()
        assert_one_error(p, fragment)
