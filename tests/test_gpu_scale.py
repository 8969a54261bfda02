"""benchmarks/gpu_scale.py cannot rot before a GPU is at hand: its tiny scale runs every part on CPU here."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_scale_tiny_runs_every_part(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gpu_scale", ROOT / "benchmarks" / "gpu_scale.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.SCALES["e5-mistral"]["model"] == dict(
        vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, max_position_embeddings=32768)  # e5-mistral-7b-instruct's config.json
    rows = dict(bench.main(["--scale", "tiny", "--device", "cpu", "--workdir", str(tmp_path)]))
    for key in ("encode: tokens/s (real)", "sweep: s/point, plain (no cache)", "sweep: s/point, layer-split cache",
                "sweep: ratio plain / cache", "merge: one linear merge (mergekit, bfloat16, verified)",
                "lora: peak memory"):
        assert key in rows, key
    assert float(rows["encode: tokens/s (real)"].replace(",", "")) > 0
    assert any(k.startswith("lora: one step") and "loss" in v for k, v in rows.items())
    assert list(tmp_path.iterdir()) == []  # the checkpoints are removed
    out = capsys.readouterr().out
    assert out.count("\n| ") == len(rows) and "| total wall time" in out  # one table, one line per row
