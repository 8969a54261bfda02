"""Bad input class 4: what SLURM and Nextflow do to tasks. SIGTERM (cancel, time limit) and SIGINT clean up and
exit 143 / 130 after one `error:` line; after a SIGKILL, the next run of the stage removes the temporary folders
whose owner process is gone (and only those). Real subprocesses of real CLIs on tiny inputs."""

import os
import signal
import subprocess
import sys
import time

import pytest

from helpers_bad_input import Snapshot, assert_ok, assert_refused, cli, make_world, popen, stderr_lines


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory, "signals", "train")


def _temporaries(parent, name):
    return sorted(p for p in parent.iterdir() if p.name.startswith(f".{name}."))


def _wait_for_temporary(proc, parent, name, timeout=300):
    """Block until the stage has created its temporary output folder (it is then mid-work)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _temporaries(parent, name):
            return
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before writing: {proc.stderr.read()[-2000:]}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("no temporary folder appeared")


def _big_collection(root, n_docs=150_000):
    """A BEIR folder large enough that `download.py collection` spends seconds validating and writing it."""
    root.mkdir()
    with open(root / "corpus.jsonl", "w") as f:
        for i in range(n_docs):
            f.write(f'{{"_id": "d{i}", "title": "", "text": "document number {i} about a topic"}}\n')
    (root / "queries.jsonl").write_text('{"_id": "q0", "text": "a query"}\n')
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td1\t1\n")
    return root


def _interrupt(proc, sig, out):
    _wait_for_temporary(proc, out.parent, out.name)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", err)


def test_sigterm_during_training_cleans_up_and_exits_143(world, tmp_path):
    out = tmp_path / "adapter"
    snap = Snapshot(world.root, tmp_path)
    proc = popen("lora_train.py", "--model", world.models["source"], "--train", world.train, "--out", out,
                 "--max-steps", "100000", "--group-size", "2", "--per-device-batch", "2", "--grad-accum", "1",
                 "--max-length", "32", "--device", "cpu", "--no-progress")
    _wait_for_temporary(proc, tmp_path, "adapter")
    deadline = time.monotonic() + 300
    while not any(f.stat().st_size for f in tmp_path.glob(".adapter.tmp-*/train_log.jsonl")):  # training is on
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:] if proc.poll() else ""
        time.sleep(0.02)
    p = _interrupt(proc, signal.SIGTERM, out)
    assert_refused(p, "error: terminated by SIGTERM", snapshot=snap, code=143)


@pytest.mark.parametrize("sig,code,line", [(signal.SIGINT, 130, "error: interrupted"),
                                           (signal.SIGTERM, 143, "error: terminated by SIGTERM")])
def test_signals_while_writing_a_collection(tmp_path, sig, code, line):
    big = _big_collection(tmp_path / "big")
    out = tmp_path / "coll"
    snap = Snapshot(tmp_path)
    p = _interrupt(popen("download.py", "collection", f"beir:{big}", "--out", out), sig, out)
    assert_refused(p, snapshot=snap, code=code)
    assert stderr_lines(p.stderr)[-1] == line


def test_the_next_run_removes_what_a_killed_run_left(world, tmp_path):
    from mergeir.io import owner_tag

    big = _big_collection(tmp_path / "big")
    out = tmp_path / "coll"
    proc = popen("download.py", "collection", f"beir:{big}", "--out", out)
    _wait_for_temporary(proc, tmp_path, "coll")
    proc.kill()  # SIGKILL: no handler runs, the temporary folder stays
    proc.wait(timeout=60)
    (stale,) = _temporaries(tmp_path, "coll")
    host = owner_tag().split("-", 1)[1]
    live = tmp_path / f".coll.tmp-{os.getpid()}-{host}live"  # a run still going (this test's own process)
    remote = tmp_path / f".coll.tmp-{proc.pid}-elsewhere.cluster~x"  # a run on another node: cannot tell
    live.mkdir()
    remote.mkdir()
    p = cli("download.py", "collection", f"beir:{world.collection}", "--out", out)
    assert_ok(p)
    assert f"warning: removed {stale}, left by process {proc.pid}" in p.stderr
    assert not stale.exists() and live.is_dir() and remote.is_dir()
    assert (out / "collection.json").is_file()
    assert _temporaries(tmp_path, "coll") == sorted([live, remote])  # sorted by name: the pids differ in length


@pytest.mark.slow
def test_a_merge_removes_layout_views_a_killed_merge_left(world, tmp_path):
    """The views hold re-keyed copies of both checkpoints (about twice the model at 7B)."""
    from mergeir.io import owner_tag

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = owner_tag().split("-", 1)[1]
    stale = tmp_path / f".mergeir-views-{dead.pid}-{host}abc"
    live = tmp_path / f".mergeir-views-{os.getpid()}-{host}def"
    for d in (stale, live):
        (d / "source").mkdir(parents=True)
        (d / "source" / "model.safetensors").write_bytes(b"\0" * 1024)
    p = cli("merge.py", "--source", world.models["source"], "--domain", world.models["domain"], "--alpha-lower",
            "0.5", "--alpha-upper", "1", "--out", tmp_path / "merged")
    assert_ok(p)
    assert not stale.exists() and live.is_dir()
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted([live.name, "merged"])
