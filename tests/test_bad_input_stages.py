"""Bad input round 3, the stages: gather (non-finite values, malformed shards and partial grids, a shard retried
after running out of GPU memory, a shard encoded from a copy of the model), a full file system under --out, symlink
loops, an --out that another process creates while a stage runs, and the α sweep's dtype and memory claims.

Every refusal: exit 2, no traceback, the last stderr line is the only `error:` line and names the file or option,
and nothing under the inputs or beside --out changed (tests/helpers_bad_input.py, Snapshot / assert_refused).
The full-file-system tests mount a 64 KiB tmpfs and need root; without it they skip, saying so.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from helpers_bad_input import (Snapshot, assert_ok, assert_refused, cli, edit_json, full_file_system, make_world,
                               partial_grids, popen)
from mergeir.errors import MergeirError

SHARDS = ("--device", "cpu", "--no-progress", "--batch-size", "4", "--max-length", "64")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory, "stages", "models", "collection", "embeddings", "results", "train", "grid")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- encoding shards


@pytest.fixture(scope="module")
def encoded(world, tmp_path_factory):
    """bin/encode.py on the tiny collection: the unsharded run and its two shards (7 batches each side of 4)."""
    root = tmp_path_factory.mktemp("shards")
    base = ["--model", world.models["source"], "--collection", world.collection, *SHARDS]
    assert_ok(cli("encode.py", *base, "--out", root / "whole"))
    for i in range(2):
        assert_ok(cli("encode.py", *base, "--out", root / f"s{i}", "--shard", i, "--shards", 2))
    return root


def _shard_copy(encoded, tmp_path, edit, index=1) -> Path:
    d = tmp_path / f"bad{index}"
    shutil.copytree(encoded / f"s{index}", d)
    edit(d)
    return d


def _edit_meta(change):
    def edit(d):
        meta = json.loads((d / "meta.json").read_text())
        change(meta)
        (d / "meta.json").write_text(json.dumps(meta))
    return edit


def _edit_npy(name, change):
    def edit(d):
        np.save(d / name, change(np.load(d / name)), allow_pickle=False)
    return edit


def _set(arr, where, value):
    arr = arr.copy()
    arr[where] = value
    return arr


def _gather_refused(encoded, tmp_path, bad: Path, *fragments):
    out = tmp_path / "gathered"
    snap = Snapshot(encoded, tmp_path)
    line = assert_refused(cli("gather.py", "embeddings", "--shard", encoded / "s0", "--shard", bad, "--out", out),
                          *fragments, snapshot=snap)
    assert not out.exists()
    return line


@pytest.mark.parametrize("side,value", [("corpus", np.nan), ("queries", np.inf), ("corpus", -np.inf)])
def test_gather_embeddings_refuses_a_shard_holding_non_finite_values(encoded, tmp_path, side, value):
    """Was accepted: the NaN went into the gathered corpus.npy (every score against it NaN)."""
    bad = _shard_copy(encoded, tmp_path, _edit_npy(f"{side}.npy", lambda a: _set(a, (0, 3), value)), index=0)
    rows = np.load(bad / f"{side}.rows.npy")
    the_id = (bad / f"{side}.ids").read_text().split()[rows[0]]
    out = tmp_path / "gathered"
    snap = Snapshot(encoded, tmp_path)
    assert_refused(cli("gather.py", "embeddings", "--shard", bad, "--shard", encoded / "s1", "--out", out),
                   f"{bad / (side + '.npy')}", repr(the_id), "NaN or infinite", snapshot=snap)
    assert not out.exists()


@pytest.mark.parametrize("case,edit,fragments", [
    ("wider vectors", _edit_npy("corpus.npy", lambda a: np.concatenate([a, a[:, :4]], axis=1)),
     ["corpus.npy: its vectors are 36-d", "dim 32"]),
    ("narrower vectors, both sides", lambda d: [_edit_npy(f"{s}.npy", lambda a: a[:, :16].copy())(d)
                                                 for s in ("queries", "corpus")], ["are 16-d", "dim 32"]),
    ("shard field empty", _edit_meta(lambda m: m.update(shard={})), ['meta.json: "shard" has no "index"']),
    ("shard field a string", _edit_meta(lambda m: m.update(shard="1 of 2")), ['meta.json: "shard" must be an object']),
    ("shard index a string", _edit_meta(lambda m: m["shard"].update(index="1")),
     ['"shard"."index" must be an integer, got \'1\'']),
    ("shard index a boolean", _edit_meta(lambda m: m["shard"].update(index=True)),
     ['"shard"."index" must be an integer, got True']),
    ("shard count a string", _edit_meta(lambda m: m["shard"].update(count="2")),
     ['"shard"."count" must be an integer']),
    ("shard plan missing", _edit_meta(lambda m: m["shard"].pop("plan_sha256")), ['"shard" has no "plan_sha256"']),
    ("meta a list", lambda d: (d / "meta.json").write_text("[1, 2]"), ["meta.json: expected a JSON object"]),
    ("fewer vectors than rows", _edit_npy("corpus.npy", lambda a: a[:-1].copy()),
     ["corpus.npy holds 23 vectors but corpus.rows.npy names 24 rows"]),
    ("ids fewer than meta says", lambda d: (d / "corpus.ids").write_text(
        "".join(f"{i}\n" for i in (d / "corpus.ids").read_text().split()[:-1])),
     ["corpus.ids holds 47 ids but meta.json says n_corpus 48"]),
    ("a row named twice", _edit_npy("corpus.rows.npy", lambda a: _set(a, 1, a[0])), ["a row is named twice"]),
])
def test_gather_embeddings_refuses_a_malformed_shard(encoded, tmp_path, case, edit, fragments):
    """Were a ValueError (shape mismatch), KeyError, TypeError, AttributeError, or silently accepted (a count
    "2", an index true)."""
    bad = _shard_copy(encoded, tmp_path, edit)
    _gather_refused(encoded, tmp_path, bad, str(bad), *fragments)


def test_gather_embeddings_refuses_shards_of_two_counts(encoded, tmp_path):
    """Was accepted: only the first shard's count was read, so a shard "1 of 3" completed a run of 2."""
    bad = _shard_copy(encoded, tmp_path, _edit_meta(lambda m: m["shard"].update(count=3)))
    _gather_refused(encoded, tmp_path, bad, str(bad), "shard 1 of 3", "one of 2")


def _assert_equals_unsharded(gathered: Path, whole: Path, exact: bool) -> None:
    got, want = _files(gathered), _files(whole)
    assert sorted(got) == sorted(want)
    for name in ("meta.json", "queries.ids", "corpus.ids"):
        assert got[name] == want[name], name
    for side in ("queries", "corpus"):
        a, b = np.load(gathered / f"{side}.npy"), np.load(whole / f"{side}.npy")
        if exact:
            assert got[f"{side}.npy"] == want[f"{side}.npy"], side
        else:
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6, err_msg=side)


def test_a_shard_retried_after_running_out_of_memory_gathers_with_its_siblings(world, encoded, tmp_path):
    """The pipeline retries an ENCODE task that exited 75 with `--attempt 2` (batch halved). A retried shard used
    to re-plan its batches at the halved size, so its rows and plan differed from its siblings' and the gather
    refused it for good. Now it keeps the run's plan and computes each planned batch in halves: the gathered
    embeddings equal the unsharded run's. Vectors are compared to 1e-6, not bit for bit: a row computed in a
    smaller batch (narrower padding, other matrix shapes) may round differently on another BLAS or a GPU (on
    this CPU, one torch thread, they came out bit-identical); meta.json and the ids are compared byte for byte."""
    base = ["--model", world.models["source"], "--collection", world.collection, *SHARDS]
    retried = tmp_path / "s1-attempt2"
    assert_ok(cli("encode.py", *base, "--out", retried, "--shard", 1, "--shards", 2, "--attempt", 2))
    assert json.loads((retried / "meta.json").read_text())["shard"]["attempt"] == 2
    assert_ok(cli("gather.py", "embeddings", "--shard", retried, "--shard", encoded / "s0", "--out", tmp_path / "g"))
    _assert_equals_unsharded(tmp_path / "g", encoded / "whole", exact=False)


def test_shards_encoded_from_two_copies_of_the_model_gather(world, encoded, tmp_path):
    """Shard 1 encoded from a byte copy of the model at another path used to be refused as "another run" (meta
    named the folder); the weights' fingerprint decides now, and the result is the unsharded run's, byte for
    byte (shard 0's meta, which names the original folder, is the gathered meta)."""
    copy = tmp_path / "elsewhere" / "source-copy"
    shutil.copytree(world.models["source"], copy)
    base = ["--collection", world.collection, *SHARDS]
    assert_ok(cli("encode.py", "--model", copy, *base, "--out", tmp_path / "s1", "--shard", 1, "--shards", 2))
    assert_ok(cli("gather.py", "embeddings", "--shard", tmp_path / "s1", "--shard", encoded / "s0",
                  "--out", tmp_path / "g"))
    _assert_equals_unsharded(tmp_path / "g", encoded / "whole", exact=True)
    # other weights (their fingerprint) are still another run, named by what differs
    other = _shard_copy(encoded, tmp_path, _edit_meta(lambda m: m.update(model_fingerprint="0" * 64)))
    _gather_refused(encoded, tmp_path, other, "is a shard of another run", "differs in model_fingerprint")


def test_a_shard_with_another_batch_plan_is_named_as_such(encoded, tmp_path):
    """A shard cut with another --batch-size (not a retry: its plan differs; meta.json as encode.py
    --batch-size 3 writes it) computed other rows: refused, saying why."""
    bad = _shard_copy(encoded, tmp_path, _edit_meta(lambda m: (m.update(batch_size=3),
                                                               m["shard"].update(plan_sha256="0" * 64))))
    _gather_refused(encoded, tmp_path, bad, str(bad), "batch plan differs", "batch_size 3 vs 4")


# ---------------------------------------------------------------- partial grids


@pytest.fixture
def parts(world, tmp_path):
    return partial_grids(world.grid, tmp_path / "parts")


def _grid_refused(parts, tmp_path, *fragments):
    out = tmp_path / "gathered"
    snap = Snapshot(*parts.values(), tmp_path)
    assert_refused(cli("gather.py", "grid", *[a for d in parts.values() for a in ("--part", d)], "--out", out),
                   *fragments, snapshot=snap)
    assert not out.exists()


def test_the_partial_grids_gather_into_the_whole_grid(world, parts, tmp_path):
    assert_ok(cli("gather.py", "grid", "--part", parts[1.0], "--part", parts[0.0], "--out", tmp_path / "g"))
    got, want = _files(tmp_path / "g"), _files(world.grid)
    assert json.loads(got.pop("grid.json")) == json.loads(want.pop("grid.json")) and got == want


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_gather_grid_refuses_a_non_finite_grid_metric(parts, tmp_path, value):
    """Was accepted: grid.json was written with `"ndcg_cut_10": NaN` (and select-alpha then ranks it)."""
    edit_json(parts[1.0] / "grid.json", lambda d: d["points"][1].update(ndcg_cut_10=value))
    _grid_refused(parts, tmp_path, str(parts[1.0] / "grid.json"), "points[1].ndcg_cut_10 is", "must be finite")


@pytest.mark.parametrize("where", ["mean", "per_query"])
def test_gather_grid_refuses_a_point_whose_metrics_are_not_finite(parts, tmp_path, where):
    """Was accepted: the point's metrics.json, NaN mean included, was copied into the gathered grid."""
    metrics = parts[0.0] / "points" / "00_10" / "metrics.json"

    def poison(doc):
        if where == "mean":
            doc["mean"]["ndcg_cut_10"] = math.nan
        else:
            next(iter(doc["per_query"].values()))["ndcg_cut_10"] = math.inf
    edit_json(metrics, poison)
    _grid_refused(parts, tmp_path, str(metrics), f"{where}.", "is not a finite number")


@pytest.mark.parametrize("change,fragments", [
    (lambda d: d.update(partial={}), ['"partial" must be {"alpha_lower": [numbers]}']),
    (lambda d: d.update(partial={"alpha_lower": "1.0"}), ['"partial" must be']),
    (lambda d: d.update(points={"a": 1}), ['"points" must be a list']),
    (lambda d: d["points"][0].update(alpha_upper="1"), ["points[0].alpha_upper must be a number"]),
    # was copied from outside the part, into a folder beside --out
    (lambda d: d["points"][0].update(dir="../part0.0/points/00_00"), ["points[0].dir must be points/<al>_<au>"]),
    (lambda d: d["points"].pop(), ["the parts hold 3 points of the 2x2 grid", "missing"]),
])
def test_gather_grid_refuses_a_malformed_part(parts, tmp_path, change, fragments):
    """Were a KeyError / TypeError, or a point copied from outside the part (a `dir` with '..')."""
    edit_json(parts[1.0] / "grid.json", change)
    _grid_refused(parts, tmp_path, *fragments)


def test_a_part_retried_with_a_halved_batch_or_from_a_model_copy_gathers(world, parts, tmp_path):
    """A SWEEP_PART retried after running out of memory records its halved batch_size, and one run from a copy
    of the model records another path: both were refused as "another sweep". The grid.json edits stand for those
    runs (bin/sweep.py --attempt 2 writes exactly batch_size 4 here); the gathered grid is the whole one."""
    edit_json(parts[1.0] / "grid.json", lambda d: d.update(batch_size=d["batch_size"] // 2))
    edit_json(parts[0.0] / "grid.json", lambda d: d["inputs"]["source"].update(path="/elsewhere/source-copy"))
    assert_ok(cli("gather.py", "grid", "--part", parts[0.0], "--part", parts[1.0], "--out", tmp_path / "g"))
    got, want = _files(tmp_path / "g"), _files(world.grid)
    assert json.loads(got.pop("grid.json"))["points"] == json.loads(want.pop("grid.json"))["points"] and got == want
    # other weights are another sweep
    edit_json(parts[0.0] / "grid.json",
               lambda d: d["inputs"]["source"].update(weights_sha256={"model.safetensors": "0" * 64}))
    _grid_refused(parts, tmp_path, "is part of another sweep", "inputs")


# ---------------------------------------------------------------- a full file system


@pytest.fixture
def full_fs(tmp_path):
    """A 64 KiB tmpfs, `free_kib` KiB left free by a filler file (default 0); unmounted afterwards."""
    with full_file_system(tmp_path) as fill:
        yield fill


STAGES = {  # stage -> (command given the world and --out, the --out name)
    "merge": (lambda w, o: ["merge.py", "--source", w.models["source"], "--domain", w.models["domain"],
                            "--alpha-lower", "0.5", "--alpha-upper", "0.5", "--out", o], "merged"),
    "encode": (lambda w, o: ["encode.py", "--model", w.models["source"], "--collection", w.collection, "--out", o,
                             *SHARDS], "emb"),
    "evaluate": (lambda w, o: ["evaluate.py", "--embeddings", w.embeddings, "--collection", w.collection,
                               "--out", o], "results"),
    "lora_train": (lambda w, o: ["lora_train.py", "--model", w.models["source"], "--train", w.train, "--out", o,
                                 "--max-steps", "1", "--device", "cpu", "--no-progress", "--group-size", "2",
                                 "--per-device-batch", "2", "--grad-accum", "1", "--max-length", "32", "--lora-r", "2",
                                 "--lora-alpha", "4"], "adapter"),
    "report_build": (lambda w, o: ["report.py", "build", "--results", w.results, "--out", o], "report"),
    "download_model": (lambda w, o: ["download.py", "model", "mergeir/tiny-source", "--revision", "seed-0",
                                     "--source", w.models["source"], "--out", o], "model"),
    "mine": (lambda w, o: ["prepare_training.py", "mine", "--collection", w.collection, "--model",
                           w.models["source"], "--out", o, "--device", "cpu", "--no-progress", "--max-length", "64"],
             "train.jsonl"),
    "select_alpha": (lambda w, o: ["report.py", "select-alpha", "--grid", w.grid, "--out", o], "alpha.json"),
}


@pytest.mark.parametrize("stage,free_kib", [(s, 0) for s in STAGES if s != "lora_train"]
                         + [("lora_train", 12), ("encode", 12)])
def test_a_full_file_system_under_out_is_one_error_line(world, full_fs, stage, free_kib):
    """Were `OSError: [Errno 28] No space left on device` tracebacks (with 12 KiB free: safetensors' SafetensorError
    for lora_train's adapter, numpy's errno-less "1536 requested and 992 written" for encode's corpus.npy). Now one
    line naming --out and "No space left on device", the temporary folder removed, the file system as it was."""
    fs = full_fs(free_kib)
    command, name = STAGES[stage]
    out = fs / name
    snap = Snapshot(world.root, fs)
    line = assert_refused(cli(*command(world, out)), str(out), "No space left on device", snapshot=snap)
    assert "free" in line and not out.exists()


def test_a_safetensors_write_that_fills_the_disk_names_out(full_fs):
    """safetensors reports a full disk as its own SafetensorError, not an OSError: the atomic output still turns it
    into the one NoSpace error (a MergeirError) naming --out, and removes its temporary folder."""
    import torch
    from safetensors.torch import save_file

    from mergeir.io import atomic_dir

    fs = full_fs(0)
    out = fs / "adapter"
    with pytest.raises(MergeirError, match="No space left on device") as e:
        with atomic_dir(out) as tmp:
            save_file({"w": torch.zeros(4096)}, str(tmp / "adapter_model.safetensors"))
    assert str(out) in str(e.value) and sorted(p.name for p in fs.iterdir()) == ["filler"]


# ---------------------------------------------------------------- symlink loops


@pytest.fixture
def loop(tmp_path):
    """a -> b -> a"""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    return tmp_path / "a"


@pytest.mark.parametrize("case", ["evaluate --out", "evaluate --out inside", "select-alpha --out",
                                  "download collection --out", "download collection source", "mine --collection"])
def test_a_symlink_loop_is_one_error_line(world, loop, case):
    """Were `RuntimeError: Symlink loop from ...` tracebacks."""
    w, other = world, loop.parent / "elsewhere"
    commands = {
        "evaluate --out": (["evaluate.py", "--embeddings", w.embeddings, "--collection", w.collection, "--out", loop],
                           f"--out {loop}"),
        "evaluate --out inside": (["evaluate.py", "--embeddings", w.embeddings, "--collection", w.collection,
                                   "--out", loop / "results"], f"--out {loop / 'results'}"),
        "select-alpha --out": (["report.py", "select-alpha", "--grid", w.grid, "--out", loop], f"--out {loop}"),
        "download collection --out": (["download.py", "collection", f"beir:{w.collection}", "--out", loop],
                                      f"--out {loop}"),
        "download collection source": (["download.py", "collection", f"beir:{loop}", "--out", other], str(loop)),
        "mine --collection": (["prepare_training.py", "mine", "--collection", loop, "--model", w.models["source"],
                               "--out", other / "train.jsonl", "--device", "cpu"], f"--collection {loop}"),
    }
    command, fragment = commands[case]
    snap = Snapshot(w.root, loop.parent)
    assert_refused(cli(*command), fragment, "symlink loop", snapshot=snap)


# ---------------------------------------------------------------- --out created while a stage runs


def test_an_out_created_by_another_stage_while_encode_runs_is_left_alone(world, tmp_path):
    """encode checked --out only when it started: a results folder another stage wrote there meanwhile was moved
    aside and deleted by the final rename. The rename checks again now: exit 2, that folder untouched."""
    out = tmp_path / "emb"
    p = popen("encode.py", "--model", world.models["deep"], "--collection", world.collection, "--out", out,
              "--device", "cpu", "--no-progress", "--batch-size", "1")
    deadline = time.monotonic() + 120
    while not any(n.name.startswith(".emb.tmp-") for n in tmp_path.iterdir()):
        assert p.poll() is None and time.monotonic() < deadline, "encode ended before its temporary folder appeared"
        time.sleep(0.005)
    shutil.copytree(world.results, out)  # another stage's output (metrics.json: stage evaluate) appears at --out
    assert p.poll() is None, "encode finished before the other output appeared: the race was not exercised"
    snap = Snapshot(world.root, out)
    stdout, stderr = p.communicate(timeout=300)
    line = assert_refused(SimpleNamespace(returncode=p.returncode, stdout=stdout, stderr=stderr), f"--out {out}",
                          "was created by another process while this encode stage ran", snapshot=snap)
    assert "not a previous encode output" in line and _files(out) == _files(world.results)
    assert [n.name for n in tmp_path.iterdir()] == ["emb"]


def test_atomic_dir_rechecks_out_before_replacing_it(tmp_path):
    """Library level, every stage: a folder another stage created (or put in place of this stage's previous
    output) while the block ran is refused, --force included (it covered what existed at the start)."""
    from mergeir.encoding import ENCODE_STAGE
    from mergeir.io import atomic_dir, write_json

    def other_stage(out):
        out.mkdir(exist_ok=True)
        write_json(out / "metrics.json", {"stage": "evaluate"})

    for force, previous in ((False, False), (True, False), (False, True), (True, True)):
        out = tmp_path / f"out-{force}-{previous}"
        if previous:
            with atomic_dir(out, stage=ENCODE_STAGE) as tmp:
                write_json(tmp / "meta.json", {"stage": "encode"})
        with pytest.raises(MergeirError, match="by another process while this encode stage ran"):
            with atomic_dir(out, stage=ENCODE_STAGE, force=force) as tmp:
                write_json(tmp / "meta.json", {"stage": "encode"})
                if previous:
                    shutil.rmtree(out)
                other_stage(out)
        assert json.loads((out / "metrics.json").read_text()) == {"stage": "evaluate"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"out-{f}-{p}" for f in (False, True)
                                                                for p in (False, True))
    # what was there at the start with --force is still replaced, and this stage's own output always
    out = tmp_path / "forced"
    other_stage(out)
    with atomic_dir(out, stage=ENCODE_STAGE, force=True) as tmp:
        write_json(tmp / "meta.json", {"stage": "encode"})
    assert sorted(p.name for p in out.iterdir()) == ["meta.json"]


def test_a_single_file_output_is_rechecked_before_its_rename(tmp_path):
    """select-alpha's alpha.json (check_output_file + write_json): a file that appeared meanwhile is kept."""
    from mergeir.io import check_output_file, write_json
    from mergeir.sweep import SELECT_STAGE

    out = tmp_path / "alpha.json"
    check_output_file(out, stage=SELECT_STAGE)
    out.write_text("someone else's file\n")
    with pytest.raises(MergeirError, match=f"--out {out} was created by another process"):
        write_json(out, {"stage": "select-alpha"})
    assert out.read_text() == "someone else's file\n" and [p.name for p in tmp_path.iterdir()] == ["alpha.json"]


# ---------------------------------------------------------------- the sweep's dtype and memory claims


def test_sweep_and_merge_state_the_same_dtype_defaults(tmp_path):
    """sweep.py --dtype said "as bin/merge.py --dtype" while its default (float32) was not merge's (float16)."""
    sweep = " ".join(cli("sweep.py", "--help").stdout.split())
    merge = " ".join(cli("merge.py", "--help").stdout.split())
    assert "[default: float32" in sweep and "bin/merge.py defaults to float16" in sweep
    assert "(as bin/merge.py --dtype)" not in sweep
    assert "[default: float16]" in merge and "bin/sweep.py" in merge and "default float32" in merge


def _e5_checkpoints(root: Path):
    """Sparse safetensors files with e5-mistral-7b's shapes (MistralModel source, MistralForCausalLM domain, both
    stored in 16 bits): headers only, the tensor data a hole, so the memory estimate runs on the real shapes."""
    import struct

    import torch
    from transformers import MistralConfig, MistralForCausalLM, MistralModel

    config = MistralConfig(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                           num_attention_heads=32, num_key_value_heads=8, bos_token_id=1, eos_token_id=2,
                           tie_word_embeddings=False, sliding_window=None)
    folders = []
    for name, cls in (("source", MistralModel), ("domain", MistralForCausalLM)):
        with torch.device("meta"):
            model = cls(config)
        header, offset = {}, 0
        for key, t in model.state_dict().items():
            header[key] = {"dtype": "F16", "shape": list(t.shape), "data_offsets": [offset, offset + 2 * t.numel()]}
            offset += 2 * t.numel()
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        folder = root / name
        folder.mkdir()
        with open(folder / "model.safetensors", "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            f.truncate(8 + len(raw) + offset)
        (folder / "config.json").write_text(json.dumps({**config.to_dict(), "architectures": [cls.__name__]}))
        folders.append(folder)
    return config, folders


def test_the_docs_state_the_sweep_memory_of_the_dtype_the_plan_sweeps_in(repo_root, tmp_path):
    """README and docs/pipeline.md gave the 7B sweep's GPU memory in bfloat16 only, while the paper plan sweeps in
    float32 (data/paper.yaml encoding.dtype, SWEEP's --dtype). The numbers must be memory.py's own estimate."""
    import torch

    from mergeir.experiment import load_experiment
    from mergeir.models import open_checkpoint
    from mergeir.sweep import sweep_estimate
    from mergeir.sweep.memory import GIB

    assert load_experiment(repo_root / "data" / "paper.yaml", check_paths=False).encoding.dtype == "float32"
    config, (source, domain) = _e5_checkpoints(tmp_path)
    src, dom = open_checkpoint(source), open_checkpoint(domain)
    prepared = SimpleNamespace(queries=SimpleNamespace(batches=[(torch.zeros(4, 4096), None)]),
                               corpus=SimpleNamespace(batches=[]))
    stated = {}
    for dtype in (torch.float32, torch.bfloat16):
        e = sweep_estimate(src, dom, config, dtype, "cpu", prepared, restore=True, layer_cache=False,
                           cache_budget=None)
        stated[dtype] = f"{e.device_bytes / GIB:.1f} GiB"
    assert stated == {torch.float32: "30.4 GiB", torch.bfloat16: "15.4 GiB"}
    readme = " ".join((repo_root / "README.md").read_text(encoding="utf-8").split())
    pipeline = " ".join((repo_root / "docs" / "pipeline.md").read_text(encoding="utf-8").split())
    for doc in (readme, pipeline):
        assert "float32" in doc and stated[torch.float32] in doc and stated[torch.bfloat16] in doc
