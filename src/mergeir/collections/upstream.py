"""What every upstream loader (beir.py, miracl.py, jqara.py) shares: the paper's settings per collection and
the provenance record each writes into collection.json's `source`. Downloads are mergeir.fetch's."""

from __future__ import annotations

from typing import Any

from ..provenance import tool_versions

_QA_JA = "Given a question, retrieve Wikipedia passages that answer the question"
# Query instructions and document text settings of the paper (docs/paper.md, "Collections").
PRESETS: dict[str, dict[str, Any]] = {
    "scifact": {"language": "en", "use_titles": True, "eval_split": "test", "train_split": "train",
                "query_instruction": "Given a scientific claim, retrieve documents that support or refute the claim"},
    "nfcorpus": {"language": "en", "use_titles": True, "eval_split": "test", "train_split": "train",
                 "query_instruction": "Given a question, retrieve relevant documents that best answer the question"},
    "miracl-ja": {"language": "ja", "use_titles": False, "eval_split": "dev", "train_split": None,
                  "query_instruction": _QA_JA},
    "jqara": {"language": "ja", "use_titles": False, "eval_split": "test", "train_split": None,
              "query_instruction": _QA_JA},
}


def provenance(**fields: Any) -> dict:
    """collection.json's `source`: where the files came from (and their digests), plus the tool versions."""
    return {**fields, "tools": tool_versions()}
