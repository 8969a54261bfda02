"""Synthetic results and α-grid folders in the docs/interfaces.md formats, for the selection/report tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CODES = {0.0: "00", 0.25: "025", 0.5: "05", 0.75: "075", 1.0: "10"}
GRID = [0.0, 0.25, 0.5, 0.75, 1.0]


def write_metrics(folder: Path, per_query: dict, tags: dict, split: str = "test", metric: str = "ndcg_cut_10") -> Path:
    """A results metrics.json: BEIR-style mean rounded to 5 decimals, per_query with a second metric beside."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vals = [per_query[q] for q in sorted(per_query)]
    doc = {
        "mean": {metric: round(float(np.mean(vals)), 5), "map": round(float(np.mean(vals)) / 2, 5)},
        "per_query": {q: {metric: float(v), "map": float(v) / 2} for q, v in per_query.items()},
        "split": split,
        "collection": tags.get("collection"),
        "tags": tags,
        "embeddings_meta": {"split": split},
        "provenance": {"tools": {}},
    }
    (folder / "metrics.json").write_text(json.dumps(doc, indent=2))
    return folder / "metrics.json"


def write_grid(root: Path, collection: str, split: str, point_values: dict, extra: dict | None = None) -> Path:
    """point_values: {(alpha_lower, alpha_upper): {qid: ndcg}} -> grid.json + points/<al>_<au>/metrics.json."""
    root = Path(root)
    points = []
    for (al, au), pq in sorted(point_values.items()):
        d = f"points/{CODES[al]}_{CODES[au]}"
        write_metrics(root / d, pq, {"collection": collection, "arm": "merged", "setting": "grid",
                                     "alpha_lower": al, "alpha_upper": au}, split=split)
        points.append({"alpha_lower": al, "alpha_upper": au, "dir": d,
                       "ndcg_cut_10": round(float(np.mean(list(pq.values()))), 5)})
    doc = {"collection": collection, "split": split, "grid": GRID, "points": points, **(extra or {})}
    (root / "grid.json").write_text(json.dumps(doc, indent=2))
    return root


def random_grid_values(qids, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {(a, b): {q: float(rng.random()) for q in qids} for a in GRID for b in GRID}


def write_training_file(path: Path, qids, sidecar: dict | None = None) -> Path:
    """A Tevatron jsonl (one row per query) and, if given, its `<file>.json` sidecar."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"query_id": q, "query": f"query {q}", "positive_passages": [{"docid": "d1", "title": "", "text": "x"}],
             "negative_passages": []} for q in qids]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if sidecar is not None:
        Path(str(path) + ".json").write_text(json.dumps(sidecar))
    return path


def write_study(root: Path, seed: int = 0, collections=("scifact", "nfcorpus"), n_queries: int = 24,
                trials=(1, 2, 3), arms=("source", "merged", "lora")) -> dict:
    """Results for a small synthetic study; returns {(collection, arm, setting, trial): {qid: value}}."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    truth = {}
    for c in collections:
        qids = [f"{c[:2]}{i:03d}" for i in range(n_queries)]
        base = rng.random(n_queries)

        def vals(shift):
            return {q: float(np.clip(b + shift + rng.normal(0, 0.1), 0, 1)) for q, b in zip(qids, base)}

        if "source" in arms:
            truth[(c, "source", None, None)] = v = vals(0.0)
            write_metrics(root / c / "source", v, {"collection": c, "arm": "source"})
        if "merged" in arms:
            truth[(c, "merged", "full", None)] = v = vals(0.05)
            write_metrics(root / c / "merged_full", v, {"collection": c, "arm": "merged", "setting": "full",
                                                        "alpha_lower": 0.75, "alpha_upper": 1.0})
        if "lora" in arms:
            truth[(c, "lora", "full", None)] = v = vals(0.08)
            write_metrics(root / c / "lora_full", v, {"collection": c, "arm": "lora", "setting": "full"})
        for t in trials:
            if "merged" in arms:
                truth[(c, "merged", "limited", t)] = v = vals(0.04)
                write_metrics(root / c / f"merged_v{t}", v, {"collection": c, "arm": "merged", "setting": "limited",
                                                            "trial": t, "alpha_lower": 0.5, "alpha_upper": 0.75})
            if "lora" in arms:
                truth[(c, "lora", "limited", t)] = v = vals(rng.normal(0.0, 0.05))
                write_metrics(root / c / f"lora_v{t}", v, {"collection": c, "arm": "lora", "setting": "limited",
                                                          "trial": f"v{t}"})
    return truth
