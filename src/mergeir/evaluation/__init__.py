"""Evaluation: embeddings searched against a collection and the run scored on its qrels (bin/evaluate.py), and the
paired significance tests the report's tables use.

`search` / `search_collection` rank documents by exact inner product (ties by document id, as trec_eval; a
re-ranking split ranks only its candidates); `evaluate` scores a run with pytrec_eval (`MEASURES`), `jqara_ndcg` with
the authors' JQaRA metric (`JQARA_KEY`); `evaluate_embeddings` is the stage (`EVALUATE_STAGE`: `run.trec`,
`metrics.json`), with `read_trec` / `write_trec`, `parse_tags` and `results_record`. `paired_tests`
(`paired_t_test`, `randomization_test` with `DEFAULT_PERMUTATIONS` and `DEFAULT_SEED`) and `holm_bonferroni` compare
two systems on the same queries.

Modules: `retrieval`, `metrics`, `significance`.
"""

from .metrics import (EVALUATE_STAGE, JQARA_KEY, MEASURES, evaluate, evaluate_embeddings, jqara_ndcg, parse_tags,
                      read_trec, results_record, write_trec)
from .retrieval import search, search_collection
from .significance import (DEFAULT_PERMUTATIONS, DEFAULT_SEED, PairedTest, holm_bonferroni, paired_t_test, paired_tests,
                           randomization_test)

__all__ = [
    "DEFAULT_PERMUTATIONS", "DEFAULT_SEED", "EVALUATE_STAGE", "JQARA_KEY", "MEASURES", "PairedTest", "evaluate",
    "evaluate_embeddings", "holm_bonferroni", "jqara_ndcg", "paired_t_test", "paired_tests", "parse_tags",
    "randomization_test", "read_trec", "results_record", "search", "search_collection", "write_trec",
]
