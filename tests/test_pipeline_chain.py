"""The `test` profile's chain of bin/ commands, end to end on CPU, from the same inputs as conf/test.config.

The inputs and every option value come from data/test.yaml through `plan.py tasks` (the CSVs main.nf reads),
so this test and `nextflow run main.nf -profile test` cannot drift apart. Each step is the command line its
module runs (modules/local/*.nf): PLAN, PREPARE_COLLECTION, MAKE_TINY, ENCODE/EVALUATE (source), SWEEP,
PREPARE_TRAINING, MAKE_TRIALS, SELECT_ALPHA, MERGE, ENCODE/EVALUATE (merged), LORA_TRAIN, ENCODE/EVALUATE
(lora), REPORT.
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from chain import run_chain  # noqa: E402  (the same chain scripts/quickstart.sh runs)

CONFIG = ROOT / "conf" / "test.config"


def test_test_profile_reads_data_test_yaml():
    assert '"${projectDir}/data/test.yaml"' in CONFIG.read_text()


@pytest.mark.slow
def test_bin_chain_of_the_test_profile(tmp_path):
    p = run_chain(tmp_path)
    exp, c, trials = p["experiment"], p["collection_row"], p["trials"]
    assert c["download"] == "beir" and set(trials) == {("full", "full"), ("limited", "v1"), ("limited", "v2")}
    # the test profile's inputs are the same files
    assert p["fixture"] == (ROOT / "tests" / "fixtures" / "tiny-beir").resolve()
    g = json.loads((p["grid"] / "grid.json").read_text())
    n_alpha = len(c["grid"].split(","))
    assert len(g["points"]) == n_alpha * n_alpha
    assert c["full_queries"] == ""  # the test profile trains the full setting on every labelled query
    assert sorted(x.name for x in p["trial_dir"].glob("v*.jsonl")) == ["v1.jsonl", "v2.jsonl"]
    n_v1 = sum(1 for ln in p["v1"].read_text().splitlines() if ln.strip())
    assert n_v1 == int(trials[("limited", "v1")]["n_queries"])
    a = p["alpha"]
    assert a["selection"] == "grid" and a["alpha_lower"] in g["grid"] and a["alpha_upper"] in g["grid"]
    assert (p["adapter"] / "adapter_model.safetensors").is_file()

    # three metrics.json, each scoring every eval query, tagged as the pipeline tags them
    n_eval = exp.collections["tiny"].n_eval_queries
    for arm in ("source", "merged", "lora"):
        m = json.loads(p[f"metrics_{arm}"].read_text())
        assert m["tags"]["arm"] == arm and m["tags"]["collection"] == "tiny"
        assert len(m["per_query"]) == n_eval
        assert 0.0 <= m["mean"]["ndcg_cut_10"] <= 1.0
    assert json.loads(p["metrics_merged"].read_text())["tags"]["alpha_lower"] == a["alpha_lower"]
    # the adapter was trained (its steps moved the weights), so the LoRA arm's vectors are not the source's
    lora_vecs = np.load(p["embeddings_lora"] / "corpus.npy", allow_pickle=False)
    source_vecs = np.load(p["embeddings_source"] / "corpus.npy", allow_pickle=False)
    assert lora_vecs.shape == source_vecs.shape and not np.allclose(lora_vecs, source_vecs, atol=1e-6)
    # the full-data setting ran too, so the report has Table A's merged column filled
    for key in ("metrics_merged_full", "metrics_lora_full"):
        assert json.loads(p[key].read_text())["tags"]["setting"] == "full"
    with open(p["report"] / "table_a_source_vs_merged.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    for arm, key in (("source", "metrics_source"), ("merged", "metrics_merged_full")):
        assert float(row[arm]) == pytest.approx(json.loads(p[key].read_text())["mean"]["ndcg_cut_10"], abs=5e-7)
