"""Atomic outputs under interruption: a Ctrl-C or SystemExit inside `atomic_dir` leaves no temporary folder and
the old output intact; `atomic_write_text` writes a temporary file and renames it, so a failed write or rename
keeps the old file whole and a reader holding the old file keeps reading the old bytes."""

import os

import pytest

from mergeir.errors import MergeirError
from mergeir.io import atomic_dir, atomic_write_text, write_json


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def _write_then(out, interrupt=None):
    """One atomic_dir run writing `a`; `interrupt` is raised inside the block, as a Ctrl-C or sys.exit would."""
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("new" if interrupt else "old")
        if interrupt:
            raise interrupt()


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_atomic_dir_interrupted_leaves_nothing_and_keeps_the_old_output(tmp_path, interrupt):
    out = tmp_path / "out"
    with pytest.raises(interrupt):
        _write_then(out, interrupt)
    assert _names(tmp_path) == []  # no output, no temporary folder
    _write_then(out)
    with pytest.raises(interrupt):
        _write_then(out, interrupt)
    assert _names(tmp_path) == ["out"] and _names(out) == ["a"] and (out / "a").read_text() == "old"


@pytest.mark.parametrize("failing", ["moving the old output aside", "publishing the new one"])
def test_atomic_dir_failing_rename_keeps_the_old_output(tmp_path, monkeypatch, failing):
    """Replacing an existing output takes two renames (old -> aside, new -> out); either may fail (a full or
    read-only file system, a network mount): the old output must still be at `out`, and nothing else left."""
    out = tmp_path / "out"
    _write_then(out)
    real_replace = os.replace

    def replace(src, dst):
        publishing = os.path.basename(src).startswith(".out.tmp-")
        if publishing == (failing == "publishing the new one"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    with pytest.raises(OSError, match="No space"):
        with atomic_dir(out) as tmp:
            (tmp / "a").write_text("new")
            monkeypatch.setattr(os, "replace", replace)
    monkeypatch.undo()
    assert _names(tmp_path) == ["out"] and (out / "a").read_text() == "old"


def test_a_reader_of_the_old_file_keeps_the_old_bytes(tmp_path):
    path = tmp_path / "metrics.json"
    atomic_write_text(path, "old contents\n")
    with open(path, encoding="utf-8") as reader:  # opened before the rewrite, read after it
        atomic_write_text(path, "new\n")
        assert reader.read() == "old contents\n"
    assert path.read_text() == "new\n" and _names(tmp_path) == ["metrics.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "run.trec"
    atomic_write_text(path, "q1 Q0 d1 1 0.5 mergeir\n")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "q1 Q0 d1 1 0.5 \udc80\n")  # a lone surrogate cannot be written as UTF-8
    assert path.read_text() == "q1 Q0 d1 1 0.5 mergeir\n" and _names(tmp_path) == ["run.trec"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt(), SystemExit(1)])
def test_failing_rename_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch, error):
    path = tmp_path / "grid.json"
    write_json(path, {"points": 25})
    before = path.read_bytes()

    def refuse(src, dst):
        raise error

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(type(error)):
        write_json(path, {"points": 0})
    monkeypatch.undo()
    assert path.read_bytes() == before and _names(tmp_path) == ["grid.json"]


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_an_output_inside_or_around_an_input_is_refused_at_any_depth(tmp_path, levels):
    """--out `levels` folders below an input would be written into it; an input `levels` folders below --out
    would be destroyed by replacing it. Both are refused before anything is created."""
    model = tmp_path / "model"
    deep = model.joinpath(*[f"sub{i}" for i in range(levels - 1)])  # `levels - 1` folders inside the input
    deep.mkdir(parents=True)
    (deep / "weights.safetensors").write_text("w")
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(MergeirError, match="lies inside the input --model"):
        with atomic_dir(deep / "out", inputs={"--model": model}):
            pass
    with pytest.raises(MergeirError, match="contains the input --model"):
        with atomic_dir(model, inputs={"--model": deep / "weights.safetensors"}):
            pass
    assert sorted(tmp_path.rglob("*")) == before
