"""The splits nothing may be trained or tuned on: one rule shared by mining, training sets, the sweep and alpha
selection, so that none of them can tune on the queries a table is measured on."""

from __future__ import annotations

# Evaluation splits of the paper's collections (docs/paper.md, "Collections"), for files that do not record theirs.
KNOWN_EVAL_SPLITS = {"nfcorpus": "test", "scifact": "test", "miracl-ja": "dev", "miracl": "dev", "jqara": "test"}


def evaluation_splits(collection: str | None, *recorded: str | None) -> set[str]:
    """`test`, the recorded eval_split(s), and the known evaluation split of a paper collection."""
    out = {"test"} | {str(s) for s in recorded if s}
    known = KNOWN_EVAL_SPLITS.get(str(collection or "").lower())
    return out | ({known} if known else set())
