"""Bad input class 3: what used to crash with a traceback is one `error:` line, the last line on stderr, naming
the file (and line and byte offset for bytes that are not UTF-8); nothing is written or touched."""

import shutil

import pytest

from helpers_bad_input import Snapshot, assert_refused, cli, make_world, write_rows


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory, "crashes", "models", "collection", "adapter")


def _latin1(path, line: int) -> int:
    """Put a Latin-1 'é' (byte 0xe9, what another tool may write) into one line; returns its byte offset."""
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = lines[line - 1][:1] + "\u00e9".encode("latin-1") + lines[line - 1][1:]
    path.write_bytes(b"\n".join(lines))
    return path.read_bytes().index(b"\xe9")


@pytest.mark.parametrize("rel,line", [("corpus.jsonl", 7), ("queries.jsonl", 3), ("qrels/test.tsv", 2),
                                      ("qrels/train.tsv", 5)])
def test_bytes_that_are_not_utf8_name_file_line_and_offset(world, tmp_path, rel, line):
    coll = tmp_path / "coll"
    shutil.copytree(world.collection, coll)
    offset = _latin1(coll / rel, line)
    snap = Snapshot(world.root, tmp_path)
    for cmd in (["download.py", "collection", f"beir:{coll}", "--out", tmp_path / "out"],
                ["evaluate.py", "--embeddings", tmp_path / "no-embeddings-read-yet", "--collection", coll,
                 "--out", tmp_path / "res"]):
        assert_refused(cli(*cmd), f"{coll / rel}:{line}: not UTF-8 text (byte 0xe9 at byte offset {offset})",
                       snapshot=snap)


def test_a_collection_json_that_is_not_utf8(world, tmp_path):
    coll = tmp_path / "coll"
    shutil.copytree(world.collection, coll)
    (coll / "collection.json").write_bytes(b'{\n  "name": "caf\xe9"\n}\n')  # the 0xe9 is byte 16
    snap = Snapshot(world.root, tmp_path)
    assert_refused(cli("download.py", "collection", f"beir:{coll}", "--out", tmp_path / "out"),
                   f"{coll / 'collection.json'}:2: not UTF-8 text (byte 0xe9 at byte offset 16)", snapshot=snap)


@pytest.mark.parametrize("title", [5, ["a", "list"], {"a": 1}])
def test_a_beir_zip_with_a_title_that_is_not_text(world, tmp_path, title):
    """An upstream BEIR zip is read leniently (ids through str(), no title = ""), but a title that is a number
    or a list is refused with its line, not a TypeError from the writer."""
    import json
    import zipfile

    lines = (world.collection / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[2])
    lines[2] = json.dumps({**bad, "title": title})
    zpath = tmp_path / "mine.zip"
    with zipfile.ZipFile(zpath, "w") as archive:
        archive.writestr("mine/corpus.jsonl", "\n".join(lines) + "\n")
        for rel in ("queries.jsonl", "qrels/test.tsv", "qrels/train.tsv"):
            archive.write(world.collection / rel, f"mine/{rel}")
    snap = Snapshot(world.root, tmp_path)
    assert_refused(cli("download.py", "collection", f"beir:{zpath}", "--out", tmp_path / "out"),
                   "corpus.jsonl:3: 'title' must be a string", snapshot=snap)


def test_a_training_file_that_is_not_utf8(tmp_path):
    row = {"query_id": "q1", "query": "a query", "positive_passages": [{"docid": "d", "text": "x"}]}
    train = write_rows(tmp_path / "train.jsonl", [row, {**row, "query_id": "q2"}])
    offset = _latin1(train, 2)
    snap = Snapshot(tmp_path)
    assert_refused(cli("prepare_training.py", "trials", "--train", train, "--out", tmp_path / "t", "--trials", "1",
                       "--queries", "1"), f"{train}:2: not UTF-8 text (byte 0xe9 at byte offset {offset})",
                   snapshot=snap)


# ---------------------------------------------------------------- incomplete safetensors files


def _cut(f, keep):
    f.write_bytes(f.read_bytes()[:keep(f.stat().st_size)])


def _commands(w, model, t):
    return {
        "encode": ["encode.py", "--model", model, "--collection", w.collection, "--out", t / "emb", "--device", "cpu"],
        "lora_train": ["lora_train.py", "--model", model, "--train", w.train, "--out", t / "ad", "--max-steps", "1",
                       "--device", "cpu"],
        "merge": ["merge.py", "--source", model, "--domain", w.models["domain"], "--alpha-lower", "0.5",
                  "--alpha-upper", "0.5", "--out", t / "merged"],
    }


@pytest.mark.parametrize("stage", ["encode", "lora_train", "merge"])
@pytest.mark.parametrize("keep,fragment", [(lambda n: n // 2, "truncated"), (lambda n: 0, "shorter than 8 bytes")],
                         ids=["truncated", "zero-byte"])
def test_an_incomplete_model_is_refused_by_every_stage(world, tmp_path, stage, keep, fragment):
    model = tmp_path / "model"
    shutil.copytree(world.models["source"], model)
    _cut(model / "model.safetensors", keep)
    snap = Snapshot(world.root, tmp_path)
    assert_refused(cli(*_commands(world, model, tmp_path)[stage]), str(model / "model.safetensors"), fragment,
                   snapshot=snap)


def test_an_incomplete_adapter_is_refused(world, tmp_path):
    adapter = tmp_path / "adapter"
    shutil.copytree(world.adapter, adapter)
    _cut(adapter / "adapter_model.safetensors", lambda n: n - 4)
    snap = Snapshot(world.root, tmp_path)
    assert_refused(cli("encode.py", "--model", world.models["source"], "--adapter", adapter, "--collection",
                       world.collection, "--out", tmp_path / "emb", "--device", "cpu"),
                   str(adapter / "adapter_model.safetensors"), "truncated", snapshot=snap)


# ---------------------------------------------------------------- the error line comes after the progress bars


def test_an_error_after_loading_is_still_the_last_and_only_error_line(world, tmp_path):
    """--max-length beyond the model's positions is found once the model is loaded (its progress bar drawn)."""
    snap = Snapshot(world.root, tmp_path)
    p = cli("encode.py", "--model", world.models["source"], "--collection", world.collection, "--out",
            tmp_path / "emb", "--device", "cpu", "--max-length", "5000")
    assert_refused(p, "--max-length 5000 exceeds the model's max_position_embeddings (1024)", snapshot=snap)
