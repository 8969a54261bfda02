"""Shared plumbing: atomic outputs, canonical JSON, git blob ids, the one-line CLI contract, tiny models."""

import hashlib
import json
import subprocess

import pytest
import typer

from helpers_cli import assert_one_error, run_bin
from mergeir import cli
from mergeir.errors import MergeirError
from mergeir.io import atomic_dir, dumps_json, git_blob_sha1, iter_jsonl, read_json


def test_atomic_dir_leaves_nothing_on_error(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "half.txt").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_only_when_complete(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "a").write_text("2")
            raise RuntimeError
    assert (out / "a").read_text() == "1"
    with atomic_dir(out) as tmp:
        (tmp / "b").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_outputs_are_readable_by_others(tmp_path):
    import os
    import stat

    from mergeir.io import write_json

    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "out") as tmp:
            pass
        write_json(tmp_path / "f.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "f.json").stat().st_mode) == 0o644


def test_canonical_json_is_order_independent():
    assert dumps_json({"b": 1, "a": [1, 2]}) == dumps_json({"a": [1, 2], "b": 1})


def test_git_blob_sha1_matches_git(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"hello\nworld\0")
    out = subprocess.run(["git", "hash-object", str(f)], capture_output=True, text=True, check=True).stdout.strip()
    assert git_blob_sha1(f) == out
    assert git_blob_sha1(f) == hashlib.sha1(b"blob 12\0hello\nworld\0").hexdigest()


def test_iter_jsonl_names_file_and_line(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text('{"_id": "1"}\n\n{"_id": \n')
    with pytest.raises(MergeirError, match=r"c.jsonl:3: malformed"):
        list(iter_jsonl(f))
    with pytest.raises(MergeirError, match="not found"):
        read_json(tmp_path / "missing.json")


def test_cli_run_one_line_errors(capsys):
    app = cli.make_app("t")

    @app.command()
    def main(n: int = typer.Option(...)) -> None:
        if n < 0:
            raise MergeirError("n must be >= 0")
        print(json.dumps({"n": n}))

    with pytest.raises(SystemExit) as e:
        cli.run(app, ["--n", "-1"])
    assert e.value.code == 2
    assert capsys.readouterr().err == "error: n must be >= 0\n"
    with pytest.raises(SystemExit) as e:
        cli.run(app, ["--n", "x"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1
    cli.run(app, ["--n", "3"])
    assert json.loads(capsys.readouterr().out) == {"n": 3}


def test_tiny_tokenizer_prepends_bos_only(tmp_path):
    from mergeir.models import build_tokenizer

    tok = build_tokenizer(["alpha beta gamma"], tmp_path / "tok")
    ids = tok("alpha beta")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] != tok.eos_token_id and len(ids) == 3


def test_make_tiny_models(tmp_path, tiny_beir):
    from safetensors import safe_open

    run_bin("make_tiny.py", "models", "--out", tmp_path / "m", "--collection", tiny_beir, check=True)
    with safe_open(str(tmp_path / "m" / "source" / "model.safetensors"), "pt") as f:
        src = set(f.keys())
    with safe_open(str(tmp_path / "m" / "domain" / "model.safetensors"), "pt") as f:
        dom = set(f.keys())
    assert "embed_tokens.weight" in src and "lm_head.weight" not in src  # MistralModel, like e5-mistral
    assert "model.embed_tokens.weight" in dom and "lm_head.weight" in dom  # MistralForCausalLM
    p = run_bin("make_tiny.py", "models", "--out", tmp_path / "x", "--collection", tmp_path / "nope")
    assert_one_error(p)
    assert not (tmp_path / "x").exists()
